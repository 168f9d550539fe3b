# Issue 17 probe: is it the latent grid that keeps the model from finding elements by shape? tools/colour_probe.py showed
# that the finetuned diffmine-base finds a label's elements by their colour: where a style hides it (sepia, grey) or the
# elements are pale, pointing falls to 0.2-0.6 at the same element area where vivid elements reach 0.9-1.0. At 128 px an
# element of 5-11% of the image spans 4-7 cells of the 16 x 16 latents. This probe runs the quality benchmark's protocol
# on the SAME stand-in written at 256 px (the same scenes: every size in the generator scales with the image), so every
# element spans twice as many latent cells on each side (32 x 32 latents; what a 4x autoencoder would give at 128 px),
# finetuning the same diffmine-base (pretrained at 128 px: a lower bound for a base pretrained at that grid) with the
# same recipe, patch sizes and blur scaled with the image as the benchmark scales them.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/size_probe.py [DATASET ...]   (about 20 min per stand-in here)
import sys
from pathlib import Path
import probe_score
from probe_score import results_file, mine_and_score, save, finetune_variant

SIZE = 256
probe_score.SETTINGS["size"] = SIZE                   # this process only: data, finetune resolution, patch size
out = Path("figures/benchmark/size_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/size_probe.py DATASET")
for name in sys.argv[1:] or ["faces"]:
    key = f"{name} at {SIZE} px"
    if key in res["results"]: continue
    work = Path(f"runs/ablation-{name}-size{SIZE}")
    ft, secs, root, recs = finetune_variant(name, f"size{SIZE}", work)
    save(res, out, key, dict(finetune_seconds=secs, size=SIZE,
                             **mine_and_score(ft, name, recs, root, work/name/f"size{SIZE}-typicality")))
