# Which noise levels make typicality mine the label's elements? The quality benchmark's finetunes (runs/benchmark/<name>/model,
# made here if missing with the benchmark's own settings), each scored with typicality over several t-ranges on the
# benchmark's images; mining metrics per range. Resumable (one run folder per dataset and range; results.json rewritten
# after each). Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/trange_probe.py [DATASET ...]
import sys
from pathlib import Path
from probe_score import SETTINGS as st, PER_LABEL, results_file, mine_and_score, save
from diffmine.benchmark import standins, finetune_standin
from diffmine.models import BASE_MODEL
from diffmine.synth import STANDINS

RANGES = [(0.1, 0.7), (0.0, 1.0), (0.3, 1.0), (0.5, 1.0), (0.2, 0.9)]   # cars also ran (0.0, 0.3) and (0.02, 0.5)
work, out = Path("runs/benchmark"), Path("figures/benchmark/trange_probe.json")
names = sys.argv[1:] or list(STANDINS)
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/trange_probe.py")
res["ranges"] = [list(r) for r in RANGES]
data = standins(work, tuple(STANDINS), st["size"], st["seed"], PER_LABEL)
for name in names:
    root, recs = data[name]
    ft = finetune_standin(name, recs, BASE_MODEL, work/name/"model", st["steps"], st["batch_size"], st["lr"], st["size"], st["seed"])
    for lo, hi in (RANGES if name in ("cars", "faces", "geo") else RANGES[:2] + RANGES[-1:]):   # places, xray: the three that matter
        key = f"{name} {lo:g}-{hi:g}"
        if key not in res["results"]:
            save(res, out, key, dict(t_range=[lo, hi], **mine_and_score(ft, name, recs, root, work/name/f"trange-{lo:g}-{hi:g}",
                                                                         t_range=(lo, hi))))
