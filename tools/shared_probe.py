# Issue 17 probe: why do the X-ray stand-in's shared elements (a bright marker square and wire on every image) come out
# typical (9.4% of the finetuned T patches against 1.1% for Rand.) when the colour stand-ins' shared elements go to -T?
# Reads the quality benchmark's typicality runs (runs/benchmark/<name>/{base,finetuned}) and their ground truth and
# reports, per stand-in and model, where the typicality of each image ranks on its own elements, on the shared ones and
# on the background (mean per-image percentile of the pixel's T among all pixels of the image, 50 = the median), and how
# often the image's top pixel lies on each. No model is run: only the maps already written are read.
# Run: .venv/bin/python tools/shared_probe.py [RUN ...]   (default: base finetuned)
import json, sys, time
from pathlib import Path
import numpy as np
from diffmine.runfolder import load_index, load_typicality
from diffmine.synth import load_groundtruth

work, out = Path("runs/benchmark"), Path("figures/benchmark/shared_probe.json")
runs = sys.argv[1:] or ["base", "finetuned"]
res = json.loads(out.read_text()) if out.exists() else dict(command="python tools/shared_probe.py [RUN ...]", results={})

def ranks(m):
    "Per-pixel percentile (0-100) of the map's values within the image."
    r = np.empty(m.size); r[np.argsort(m, axis=None, kind="stable")] = np.arange(m.size)
    return (100 * r / max(m.size - 1, 1)).reshape(m.shape)

for name in ("cars", "faces", "geo", "places", "xray", "xray-33"):   # xray-33: the X-ray stand-in before 2026-12-05
    if not (work/"data"/name).exists(): continue
    gt = load_groundtruth(work/"data"/name)
    for kind in runs:
        run = work/name/kind
        if not (run/"index.csv").exists(): continue
        acc = {k: [] for k in ("own", "shared", "background")}
        top = {k: 0 for k in acc}; n = 0
        for row in load_index(run).itertuples():
            m = load_typicality(run, row.rel)
            own, shared = gt.label_mask(row.rel, row.label), gt.shared_mask(row.rel)
            if m.shape != own.shape: continue
            r, bg = ranks(m), ~(own | shared)
            for k, sel in (("own", own), ("shared", shared), ("background", bg)):
                if sel.any(): acc[k].append(float(r[sel].mean()))
            i = np.unravel_index(np.argmax(m), m.shape)
            top["own" if own[i] else "shared" if shared[i] else "background"] += 1; n += 1
        row = dict(images=n, **{f"rank_{k}": round(float(np.mean(v)), 1) for k, v in acc.items() if v},
                   **{f"top_on_{k}": round(v / max(n, 1), 3) for k, v in top.items()},
                   images_with_shared=len(acc["shared"]))
        res["results"][f"{name} {kind}"] = row
        print(name, kind, row, flush=True)
res["date"] = time.strftime("%Y-%m-%d")
out.write_text(json.dumps(res, indent=1))
