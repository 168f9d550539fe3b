# Issue 17 probe: how much of the quality benchmark's shortfall (pointing game, precision@K of T, -T) is the estimator's
# noise? The benchmark draws 20 (eps, t) pairs per image to save CPU; the paper's protocol draws N = 100. Same finetuned
# model (runs/benchmark/<name>/model, the benchmark's finetune: 400 steps until 2026-12-05, then 1,600), same images,
# scored as the benchmark scores it, with N draws over the model's t-range. Keys and folders name the model's steps
# (none for 400, as first measured).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/draws_probe.py DATASET [N ...]
import sys
from pathlib import Path
from probe_score import SETTINGS as st, PER_LABEL, results_file, mine_and_score, save
from diffmine.benchmark import standins
from diffmine.finetune import latest_checkpoint

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
work, out = Path("runs/benchmark"), Path("figures/benchmark/draws_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/draws_probe.py DATASET N")
root, recs = standins(work, (name,), st["size"], st["seed"], PER_LABEL)[name]
steps = int(latest_checkpoint(work/name/"model").name.split("-")[1])
tag = "" if steps == 400 else f"{steps} steps "
for n in [int(n) for n in sys.argv[2:]] or [100]:
    key = f"{name} {tag}draws {n}"
    if key not in res["results"]:
        run = work/name/(f"draws{n}-typicality" if steps == 400 else f"draws{n}-steps{steps}-typicality")
        save(res, out, key, dict(steps=steps, **mine_and_score(work/name/"model", name, recs, root, run, draws=n)))
