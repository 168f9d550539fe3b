# Issue 17 probe: is a constant learning rate what keeps the longer finetunes from converging? The quality benchmark's
# finetunes at a constant lr 1e-3 were continued from 1,600 to 3,200 steps (2026-12-05): Faces' pointing game rose
# (0.78 -> 0.87), Cars' fell (0.84 -> 0.80) and Places' loss blew up at step 2,900 (0.03 -> 0.7, back to 0.04 by 3,200;
# pointing 0.83 -> 0.78), and per-label pointing moved by up to 0.4 between checkpoints. This probe continues the
# same 1,600-step checkpoint to 3,200 steps with the learning rate falling (half a cosine) from 1e-3 at step 1,600 to 0
# at 3,200 (`finetune(decay_from=1600)`), everything else as the benchmark, and scores it as the benchmark does.
# A stand-in whose 1,600-step checkpoint is not on this machine is finetuned from diffmine-base (the same run: the lr is
# set from the step index at every update, so constant-then-decay from nothing equals the resumed continuation).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/decay_probe.py [--draws N] DATASET [DATASET ...]
# (--draws N: the same finetunes mapped with N draws instead of the benchmark's 20, e.g. the paper's 100)
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, continue_from

work, out = Path("runs/benchmark"), Path("figures/benchmark/decay_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/decay_probe.py DATASET")
# where each stand-in's 1,600-step checkpoint of the benchmark's finetune was kept when the benchmark went on to 3,200
SRC = {"faces": "model-steps3200", "places": "model-bench1600", "xray": "model-bench1600"}
args = sys.argv[1:]
draws = int(args[args.index("--draws") + 1]) if "--draws" in args else None
names = [a for i, a in enumerate(args) if a != "--draws" and (i == 0 or args[i - 1] != "--draws")]
for name in names or ["places"]:
    key = f"{name} 1600 constant + 1600 cosine decay" + (f" draws {draws}" if draws else "")
    if key in res["results"]: continue
    src = work/name/SRC.get(name, "-")
    resumed = 1600 if (src/"checkpoint-1600").exists() else 0
    if resumed: continue_from(src, work/name/"model-decay1600", 1600)
    ft, secs, root, recs = finetune_variant(name, "decay1600", work, steps=3200, decay_from=1600)
    save(res, out, key, dict(finetune_seconds=secs, resumed_from=resumed, decay_from=1600,
                             **mine_and_score(ft, name, recs, root, work/name/("decay1600-typicality" + (f"-draws{draws}" if draws else "")),
                                              draws=draws)))
