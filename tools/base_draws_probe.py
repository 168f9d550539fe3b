# Issue 17 probe: how much do the base model's targets (pointing game of diffmine-base <= 0.3, AUC-PR finetuned / base
# >= 3) move with the draw set alone? The benchmark maps diffmine-base on each stand-in's images with 20 draws fixed by
# SEED (quality.json's base rows); this maps it again under other draw seeds, scored as the benchmark scores it. The
# base is not finetuned, so the draw set is the only thing that changes.
# Run from the repo root:
#   OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/base_draws_probe.py DATASET [--draws N] SEED [SEED ...]
# --draws N maps with N draws instead of the benchmark's (the paper's N = 100: the base's expectation, nearly).
# Writes figures/benchmark/base_draws_probe.json (resumed); maps in runs/benchmark/<DATASET>/base-seed<SEED>-draws<N>-typicality.
import sys, json
from pathlib import Path
from probe_score import SETTINGS as st, PER_LABEL, results_file, mine_and_score, save
from diffmine.benchmark import standins
from diffmine.models import BASE_MODEL

args = sys.argv[2:]
n = int(args[args.index("--draws") + 1]) if "--draws" in args else st["draws"]
if "--draws" in args: del args[args.index("--draws"):args.index("--draws") + 2]
name, seeds = sys.argv[1], [int(s) for s in args] or [43, 44]
work, out = Path("runs/benchmark"), Path("figures/benchmark/base_draws_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools python tools/base_draws_probe.py DATASET SEED ...")
q = json.loads(Path("figures/benchmark/quality.json").read_text())["standins"][name]
res["results"].setdefault(f"{name} draw seed 42 (quality.json)", dict(
    pointing=q["base"]["localisation"]["pointing"], auc_pr=q["base"]["localisation"]["auc_pr"],
    finetuned_auc_pr=q["finetuned"]["localisation"]["auc_pr"]))
root, recs = standins(work, (name,), st["size"], st["seed"], PER_LABEL)[name]
for seed in seeds:
    key = f"{name} draw seed {seed}" + (f", {n} draws" if n != st["draws"] else "")
    if key not in res["results"]:
        row = mine_and_score(str(BASE_MODEL), name, recs, root, work/name/f"base-seed{seed}-draws{n}-typicality", seed=seed,
                             draws=n)
        save(res, out, key, dict(draw_seed=seed, finetuned_auc_pr=q["finetuned"]["localisation"]["auc_pr"], **row))
