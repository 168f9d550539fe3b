# Issue 17 probe: does letting the label reach the UNet at 16 x 16 (cross-attention at the finest latent level, as SD 1.5
# has at its finest levels) raise what mining finds? diffmine-base cross-attends at 8 x 8 and 4 x 4 only. This probe grows
# the committed diffmine-base by a cross-attention transformer at 16 x 16 (down and up), its output projection zeroed so
# the grown model computes exactly what diffmine-base computes, and finetunes it with the quality benchmark's recipe for
# one stand-in (the new layers learn during the finetune only, not in pretraining: a lower bound for a base pretrained
# with them). Scored like tools/trange_probe.py (20 draws over the model's t-range on the benchmark's images).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/xattn16_probe.py [DATASET ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, grown_base

work, out = Path("runs/benchmark"), Path("figures/benchmark/xattn16_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/xattn16_probe.py DATASET")
for name in sys.argv[1:] or ["cars", "faces"]:
    key = f"{name} xattn16 zero-init"
    if key in res["results"]: continue
    base, n_new, n_par = grown_base()
    ft, secs, root, recs = finetune_variant(name, "xattn16", work, base=base)
    save(res, out, key, dict(new_tensors=n_new, unet_parameters=n_par, finetune_seconds=secs,
                             **mine_and_score(ft, name, recs, root, work/name/"xattn16-typicality")))
