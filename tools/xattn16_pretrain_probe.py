# Issue 17 probe, the part tools/xattn16_probe.py left open: cross-attention at 16 x 16 that has been PRETRAINED (under
# generic captions), not only learnt in the finetune. diffmine-base grown by zero-initialised cross-attention transformers
# at 16 x 16 (tools/xattn16_probe.py's `grown_base`) continues pretraining on diffmine-base's mixture for STEPS steps
# with the pretraining recipe (batch 32, lr 5e-4, 10% empty captions, EMA); the control continues diffmine-base itself
# the same way, so that what the longer pretraining gives is not credited to the new layers. Each is then finetuned with
# the quality benchmark's recipe on DATASET and scored as the benchmark scores it.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/xattn16_pretrain_probe.py [DATASET] [STEPS]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, grown_base
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL, load_model
from diffmine.pretrain import pretraining_mixture, BASE_TRAIN, BASE_RESOLUTION

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 500
src, work = Path("runs/base-model/sources"), Path("runs/benchmark")
out = Path("figures/benchmark/xattn16_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/xattn16_probe.py DATASET")
recs = pretraining_mixture(Path("runs/base-model/data"), next(src.glob("scikit_image-*.whl")), src/"emoji-datasource-google-16.0.0.tgz")
for variant in ("xattn16", "control"):
    key = f"{name} {variant} pretrained +{steps}"
    if key in res["results"]: continue
    base = grown_base()[0] if variant == "xattn16" else load_model(str(BASE_MODEL))
    base.unet.float()
    cont = finetune(recs, Path("runs/base-model")/f"continued-{variant}-{steps}", "{label}", "", base=base,
                    resolution=BASE_RESOLUTION, steps=steps, batch_size=BASE_TRAIN["batch_size"], lr=BASE_TRAIN["lr"],
                    cond_dropout=BASE_TRAIN["cond_dropout"], ema=True, checkpoint_every=250, seed=0, resume=True,
                    dataset="pretraining")
    ft, secs, root, rs = finetune_variant(name, f"{variant}-pre{steps}", work, base=str(cont))
    save(res, out, key, dict(variant=variant, continued_steps=steps, finetune_seconds=secs,
                             **mine_and_score(ft, name, rs, root, work/name/f"{variant}-pre{steps}-typicality")))
