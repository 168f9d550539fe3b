# Issue 17 probe: does a longer finetune teach the labels whose elements lose their colour (tools/colour_probe.py: the
# sepia/grey-styled labels and the pale crescents fail, the vivid ones do not)? steps_ablation.json measured 400 -> 1600
# steps per stand-in (Faces pointing 0.68 -> 0.77) but not per label. This probe resumes the quality benchmark's own
# finetune of one stand-in from a checkpoint (copied to model-steps<S>; same seed, data order, constant lr) to S steps
# and scores it as the benchmark scores it, per label included, with the benchmark's draws and with each of --draws.
# First run (2026-12-05): 400 -> 1,600 steps. Second (2026-12-05, session 18): 1,600 -> 3,200 steps, at 20 and 100 draws.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/steps_per_label_probe.py [DATASET ...] [--steps S] [--from F] [--draws N ...]
import argparse
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, continue_from

ap = argparse.ArgumentParser()
ap.add_argument("datasets", nargs="*", default=["faces"])
ap.add_argument("--steps", type=int, default=1600)
ap.add_argument("--from", dest="start", type=int, default=400)
ap.add_argument("--draws", type=int, nargs="*", default=[])
a = ap.parse_args()
work, out = Path("runs/benchmark"), Path("figures/benchmark/steps_per_label_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/steps_per_label_probe.py [--steps S --from F --draws N] DATASET")
for name in a.datasets:
    tag = f"steps{a.steps}"
    for n in [None] + a.draws:
        key = f"{name} {a.steps} steps" + (f" draws {n}" if n else "")
        if key in res["results"]: continue
        continue_from(work/name/"model", work/name/f"model-{tag}", a.start)
        ft, secs, root, recs = finetune_variant(name, tag, work, steps=a.steps)
        run = work/name/(f"{tag}-typicality" if n is None else f"draws{n}-{tag}-typicality")
        save(res, out, key, dict(finetune_seconds=secs, resumed_from=a.start,
                                 **mine_and_score(ft, name, recs, root, run, draws=n)))
