# Issue 17 probe: does a learning-rate warm-up (which keeps the first AdamW steps from throwing diffmine-base off: its
# loss jumps from 0.065 to 0.28 after step 1 at lr 1e-3) change what mining finds? The quality benchmark's recipe for one
# stand-in (400 steps, batch 16, lr 1e-3, seed 0, 128 px) with `warmup_steps` W, scored like tools/trange_probe.py
# (typicality with 20 draws over the model's t-range on the benchmark's images; pointing, AUC-PR, P@20).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/warmup_probe.py [DATASET] [W ...]
import sys, json, time
from pathlib import Path
from diffmine.reproduce import BENCHMARK_SETTINGS
from diffmine.benchmark import standins, mined_images, _prompted
from diffmine.config import dataset_spec, SEED
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL
from diffmine.synth import STANDIN_LAYOUTS
from diffmine.typicality import compute_typicality
from diffmine.patches import mine_patches, default_patch_size
from diffmine.evaluation import localisation, patch_quality

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
warmups = [int(w) for w in sys.argv[2:]] or [50]
st = dict(BENCHMARK_SETTINGS)
work, out = Path("runs/benchmark"), Path("figures/benchmark/warmup_probe.json")
res = json.loads(out.read_text()) if out.exists() else dict(
    command="OMP_WAIT_POLICY=PASSIVE python tools/warmup_probe.py DATASET W", results={},
    settings={k: st[k] for k in ("size", "steps", "batch_size", "lr", "draws", "images_per_label", "k", "seed")})
root, recs = standins(work, (name,), st["size"], st["seed"])[name]
s = dataset_spec(name)
for w in warmups:
    key = f"{name} warmup {w}"
    if key in res["results"]: continue
    t0 = time.time()
    ft = finetune(recs, work/name/f"model-warmup{w}", s.template, s.null_prompt, base=str(BASE_MODEL), resolution=st["size"],
                  steps=st["steps"], batch_size=st["batch_size"], lr=st["lr"], cond_dropout=s.cond_dropout,
                  checkpoint_every=100, seed=st["seed"], resume=True, dataset=name, warmup_steps=w)
    secs_ft = time.time() - t0
    run = work/name/f"warmup{w}-typicality"
    compute_typicality(_prompted(ft, name), recs, run, n=st["draws"], seed=SEED, layout=STANDIN_LAYOUTS[name],
                       limit=mined_images(recs, st))
    pq = patch_quality(mine_patches(run, patch=default_patch_size(s.patch_size, st["size"]), top=None, seed=st["seed"]), root, k=st["k"])
    _, loc = localisation(run, root)
    res["results"][key] = dict(dataset=name, warmup_steps=w, finetune_seconds=round(secs_ft, 1), pointing=loc["pointing"],
                               ap=loc["ap"], auc_pr=loc["auc_pr"], p_T=pq["T"]["precision"], p_rand=pq["rand"]["precision"],
                               p_negT=pq["-T"]["precision"], shared_T=pq["T"]["shared_rate"])
    res["date"] = time.strftime("%Y-%m-%d")
    print(key, res["results"][key], flush=True)
    out.write_text(json.dumps(res, indent=1))
