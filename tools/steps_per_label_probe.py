# Issue 17 probe: does a longer finetune teach the labels whose elements lose their colour (tools/colour_probe.py: the
# sepia/grey-styled labels and the pale crescents fail, the vivid ones do not)? steps_ablation.json measured 400 -> 1600
# steps per stand-in (Faces pointing 0.68 -> 0.77) but not per label. This probe resumes the quality benchmark's own
# finetune of one stand-in from its 400-step checkpoint (copied to model-steps1600; same seed, data order, lr) to 1,600
# steps and scores it as the benchmark scores it, per label included.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/steps_per_label_probe.py [DATASET ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant, continue_from

work, out = Path("runs/benchmark"), Path("figures/benchmark/steps_per_label_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/steps_per_label_probe.py DATASET")
for name in sys.argv[1:] or ["faces"]:
    key = f"{name} 1600 steps"
    if key in res["results"]: continue
    continue_from(work/name/"model", work/name/"model-steps1600")
    ft, secs, root, recs = finetune_variant(name, "steps1600", work, steps=1600)
    save(res, out, key, dict(finetune_seconds=secs, resumed_from=400,
                             **mine_and_score(ft, name, recs, root, work/name/"steps1600-typicality")))
