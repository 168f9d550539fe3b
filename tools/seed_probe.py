# Issue 17 probe: how far does the quality benchmark's finetune wander with its seed alone? The benchmark's finetune of
# stand-in DATASET (3,200 steps, batch 16, lr 1e-3, from diffmine-base) with finetune seed SEED (the benchmark uses 0: its
# row in quality.json is the control), typicality with the benchmark's own draws and seed, scored as the benchmark scores.
# This spread is the yardstick for every one-run probe beside it.
# Run: OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/seed_probe.py DATASET SEED [SEED ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant

name, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]] or [1]
work, out = Path("runs/benchmark"), Path("figures/benchmark/seed_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools python tools/seed_probe.py DATASET SEED ...")
for seed in seeds:
    key = f"{name} finetune seed {seed}"
    if key in res["results"]: continue
    ft, secs, root, rs = finetune_variant(name, f"seed{seed}", work, seed=seed)
    save(res, out, key, dict(finetune_seed=seed, finetune_seconds=secs,
                             **mine_and_score(ft, name, rs, root, work/name/f"seed{seed}-typicality")))
