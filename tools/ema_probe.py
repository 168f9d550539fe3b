# Issue 17 probe: does an exponential moving average of the finetune's weights (diffusers' EMAModel, decay
# min(0.9999, (1 + step) / (10 + step)): about the last 45 steps at step 400) make mining less noisy than the last
# weights of an AdamW run at lr 1e-3? The quality benchmark's recipe for one stand-in with `ema=True`, scored as the
# benchmark scores it. Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/ema_probe.py [DATASET ...]
import sys, time
from pathlib import Path
from probe_score import SETTINGS as st, results_file, mine_and_score, save
from diffmine.benchmark import standins
from diffmine.config import dataset_spec
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL

work, out = Path("runs/benchmark"), Path("figures/benchmark/ema_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/ema_probe.py DATASET")
for name in sys.argv[1:] or ["cars"]:
    key = f"{name} ema"
    if key in res["results"]: continue
    root, recs = standins(work, (name,), st["size"], st["seed"])[name]
    s = dataset_spec(name)
    t0 = time.time()
    ft = finetune(recs, work/name/"model-ema", s.template, s.null_prompt, base=str(BASE_MODEL), resolution=st["size"],
                  steps=st["steps"], batch_size=st["batch_size"], lr=st["lr"], cond_dropout=s.cond_dropout, ema=True,
                  checkpoint_every=100, seed=st["seed"], resume=True, dataset=name)
    row = dict(finetune_seconds=round(time.time() - t0, 1), **mine_and_score(ft, name, recs, root, work/name/"ema-typicality"))
    save(res, out, key, row)
