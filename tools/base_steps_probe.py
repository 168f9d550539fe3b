# Issue 17 probe: is diffmine-base under-pretrained? Its UNet saw 1,500 steps (41.5 min on the machine that made it; the issue allows about 2 h
# for the whole base) and its loss was still falling (0.069 -> 0.063 over the last 500 steps). diffmine-base continues
# pretraining for STEPS more steps with its own recipe (batch 32, lr 5e-4, 10% empty captions, EMA; a fresh optimiser,
# so a lower bound on training that long from nothing), then for each DATASET: the continued base's own maps (the
# "base" row: pointing <= 0.3 and the AUC-PR ratio are scored against it) and the quality benchmark's finetune from it
# (3,200 steps, batch 16, lr 1e-3, seed 0), scored exactly as the benchmark scores. The control is quality.json itself:
# the same finetune, draws and seed from diffmine-base.
# Run: OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/base_steps_probe.py STEPS DATASET [DATASET ...]
import shutil, sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, PER_LABEL, SETTINGS
from diffmine.benchmark import standins
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL, load_model
from diffmine.pretrain import pretraining_mixture, BASE_TRAIN, BASE_RESOLUTION

steps, names = int(sys.argv[1]), sys.argv[2:] or ["faces"]
src, work = Path("runs/base-model/sources"), Path("runs/benchmark")
out = Path("figures/benchmark/base_steps_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools python tools/base_steps_probe.py STEPS DATASET ...")
recs = pretraining_mixture(Path("runs/base-model/data"), next(src.glob("scikit_image-*.whl")), src/"emoji-datasource-google-16.0.0.tgz")
base = load_model(str(BASE_MODEL)); base.unet.float()
cont = finetune(recs, Path("runs/base-model")/f"continued-{steps}", "{label}", "", base=base, resolution=BASE_RESOLUTION,
                steps=steps, batch_size=BASE_TRAIN["batch_size"], lr=BASE_TRAIN["lr"], cond_dropout=BASE_TRAIN["cond_dropout"],
                ema=True, checkpoint_every=250, seed=0, resume=True, dataset="pretraining")
# the continuation's own time, from its train log (a resumed run's wall time would say nothing)
res.setdefault("pretrain_seconds", {})[str(steps)] = float((Path(cont)/"train_log.csv").read_text().split()[-1].split(",")[-1])
# the continued model as a base: its model files and diffmine-base's own spec (no labels, template or null prompt: the
# captions it was trained on are not labels, so typicality with a dataset's labels is not refused)
cont, base_dir = Path(cont), Path("runs/base-model")/f"base-{steps}"
if not (base_dir/"diffmine.json").exists():
    base_dir.mkdir(exist_ok=True)
    for part in ("unet", "vae", "scheduler", "tokenizer", "text_encoder", "model_index.json"):
        if (cont/part).is_dir(): shutil.copytree(cont/part, base_dir/part, dirs_exist_ok=True)
        elif (cont/part).exists(): shutil.copy2(cont/part, base_dir/part)
    shutil.copy2(Path(BASE_MODEL)/"diffmine.json", base_dir/"diffmine.json")
cont = base_dir
for name in names:
    key = f"{name} base +{steps}"
    if key not in res["results"]:
        root, rs = standins(work, (name,), SETTINGS["size"], SETTINGS["seed"], PER_LABEL)[name]
        save(res, out, key, dict(model="base", continued_steps=steps,
                                 **mine_and_score(cont, name, rs, root, work/name/f"base{steps}-typicality")))
    key = f"{name} finetuned from base +{steps}"
    if key not in res["results"]:
        ft, secs, root, rs = finetune_variant(name, f"base{steps}", work, base=str(cont))
        save(res, out, key, dict(model="finetuned", continued_steps=steps, finetune_seconds=secs,
                                 **mine_and_score(ft, name, rs, root, work/name/f"ft-base{steps}-typicality")))
