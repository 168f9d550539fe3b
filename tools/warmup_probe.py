# Issue 17 probe: does a learning-rate warm-up (which keeps the first AdamW steps from throwing diffmine-base off: its
# loss jumps from 0.065 to 0.28 after step 1 at lr 1e-3) change what mining finds? The quality benchmark's recipe for one
# stand-in (400 steps, batch 16, lr 1e-3, seed 0, 128 px) with `warmup_steps` W, scored like tools/trange_probe.py
# (typicality with 20 draws over the model's t-range on the benchmark's images; pointing, AUC-PR, P@20).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/warmup_probe.py [DATASET] [W ...]
import sys, time
from pathlib import Path
from probe_score import SETTINGS as st, results_file, mine_and_score, save
from diffmine.benchmark import standins
from diffmine.config import dataset_spec
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
warmups = [int(w) for w in sys.argv[2:]] or [50]
work, out = Path("runs/benchmark"), Path("figures/benchmark/warmup_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/warmup_probe.py DATASET W")
root, recs = standins(work, (name,), st["size"], st["seed"])[name]
s = dataset_spec(name)
for w in warmups:
    key = f"{name} warmup {w}"
    if key in res["results"]: continue
    t0 = time.time()
    ft = finetune(recs, work/name/f"model-warmup{w}", s.template, s.null_prompt, base=str(BASE_MODEL), resolution=st["size"],
                  steps=st["steps"], batch_size=st["batch_size"], lr=st["lr"], cond_dropout=s.cond_dropout,
                  checkpoint_every=100, seed=st["seed"], resume=True, dataset=name, warmup_steps=w)
    row = dict(warmup_steps=w, finetune_seconds=round(time.time() - t0, 1),
               **mine_and_score(ft, name, recs, root, work/name/f"warmup{w}-typicality"))
    save(res, out, key, row)
