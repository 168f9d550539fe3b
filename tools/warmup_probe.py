# Issue 17 probe: does a learning-rate warm-up (which keeps the first AdamW steps from throwing diffmine-base off: its
# loss jumps from 0.065 to 0.28 after step 1 at lr 1e-3) change what mining finds? The quality benchmark's recipe for one
# stand-in (400 steps, batch 16, lr 1e-3, seed 0, 128 px) with `warmup_steps` W, scored like tools/trange_probe.py
# (typicality with 20 draws over the model's t-range on the benchmark's images; pointing, AUC-PR, P@20).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/warmup_probe.py [DATASET] [W ...]
import sys
from pathlib import Path
from probe_score import results_file, mine_and_score, save, finetune_variant

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
work, out = Path("runs/benchmark"), Path("figures/benchmark/warmup_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/warmup_probe.py DATASET W")
for w in [int(w) for w in sys.argv[2:]] or [50]:
    key = f"{name} warmup {w}"
    if key in res["results"]: continue
    ft, secs, root, recs = finetune_variant(name, f"warmup{w}", work, warmup_steps=w)
    save(res, out, key, dict(warmup_steps=w, finetune_seconds=secs, **mine_and_score(ft, name, recs, root, work/name/f"warmup{w}-typicality")))
