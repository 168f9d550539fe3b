# Issue 17 probe: does an exponential moving average of the finetune's weights (diffusers' EMAModel, decay
# min(0.9999, (1 + step) / (10 + step)): about the last 45 steps at step 400) make mining less noisy than the last
# weights of an AdamW run at lr 1e-3? The quality benchmark's recipe for one stand-in with `ema=True`, scored as the
# benchmark scores it. Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/ema_probe.py [DATASET ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant

work, out = Path("runs/benchmark"), Path("figures/benchmark/ema_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/ema_probe.py DATASET")
for name in sys.argv[1:] or ["cars"]:
    key = f"{name} ema"
    if key in res["results"]: continue
    ft, secs, root, recs = finetune_variant(name, "ema", work, ema=True)
    save(res, out, key, dict(finetune_seconds=secs, **mine_and_score(ft, name, recs, root, work/name/"ema-typicality")))
