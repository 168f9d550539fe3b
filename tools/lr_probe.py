# Issue 17 probe: the finetune's learning rate on the current diffmine-base. At the benchmark's lr 1e-3 the first AdamW
# step throws the pretrained model off (loss 0.065 -> 0.28); the paper finetunes SD at 1e-4. The benchmark's recipe for
# one stand-in (400 steps) at other learning rates, scored as the benchmark scores it.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/lr_probe.py DATASET [LR ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
work, out = Path("runs/benchmark"), Path("figures/benchmark/lr_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/lr_probe.py DATASET LR")
for lr in [float(x) for x in sys.argv[2:]] or [3e-4, 1e-4]:
    key = f"{name} lr {lr:g}"
    if key in res["results"]: continue
    ft, secs, root, recs = finetune_variant(name, f"lr{lr:g}", work, lr=lr)
    save(res, out, key, dict(lr=lr, finetune_seconds=secs, **mine_and_score(ft, name, recs, root, work/name/f"lr{lr:g}-typicality")))
