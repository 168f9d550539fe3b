# Which noise levels make typicality mine the label's elements? The quality benchmark's finetunes (runs/benchmark/<name>/model,
# made here if missing with the benchmark's own settings), each scored with typicality over several t-ranges on the
# benchmark's images; mining metrics per range. Resumable (one run folder per dataset and range; results.json rewritten
# after each). Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/trange_probe.py [DATASET ...]
import sys, json, time
from pathlib import Path
from diffmine.reproduce import BENCHMARK_SETTINGS
from diffmine.benchmark import standins, finetune_standin, mined_images, _prompted
from diffmine.config import dataset_spec, SEED
from diffmine.models import BASE_MODEL
from diffmine.synth import STANDINS, STANDIN_LAYOUTS
from diffmine.typicality import compute_typicality
from diffmine.patches import mine_patches, default_patch_size
from diffmine.evaluation import localisation, patch_quality

RANGES = [(0.1, 0.7), (0.0, 1.0), (0.3, 1.0), (0.5, 1.0), (0.2, 0.9)]   # cars also ran (0.0, 0.3) and (0.02, 0.5)
st = dict(BENCHMARK_SETTINGS)
work, out = Path("runs/benchmark"), Path("figures/benchmark/trange_probe.json")
names = sys.argv[1:] or list(STANDINS)
res = json.loads(out.read_text()) if out.exists() else dict(
    command="OMP_WAIT_POLICY=PASSIVE python tools/trange_probe.py", settings={k: st[k] for k in ("size", "steps", "batch_size", "lr", "draws", "images_per_label", "k", "seed")},
    ranges=[list(r) for r in RANGES], results={})
res["date"] = time.strftime("%Y-%m-%d")
data = standins(work, tuple(STANDINS), st["size"], st["seed"])
for name in names:
    root, recs = data[name]
    s = dataset_spec(name)
    ft = finetune_standin(name, recs, BASE_MODEL, work/name/"model", st["steps"], st["batch_size"], st["lr"], st["size"], st["seed"])
    model = _prompted(ft, name)
    k = default_patch_size(s.patch_size, st["size"])
    for lo, hi in (RANGES if name in ("cars", "faces", "geo") else RANGES[:2] + RANGES[-1:]):   # places, xray: the three that matter
        key = f"{name} {lo:g}-{hi:g}"
        if key in res["results"]: continue
        run = work/name/f"trange-{lo:g}-{hi:g}"
        t0 = time.time()
        compute_typicality(model, recs, run, n=st["draws"], t_range=(lo, hi), seed=SEED, layout=STANDIN_LAYOUTS[name],
                           limit=mined_images(recs, st))
        secs = time.time() - t0
        pq = patch_quality(mine_patches(run, patch=k, top=None, seed=st["seed"]), root, k=st["k"])
        _, loc = localisation(run, root)
        r = dict(dataset=name, t_range=[lo, hi], seconds=round(secs, 1), pointing=loc["pointing"], ap=loc["ap"], auc_pr=loc["auc_pr"],
                 p_T=pq["T"]["precision"], p_rand=pq["rand"]["precision"], p_negT=pq["-T"]["precision"], shared_T=pq["T"]["shared_rate"],
                 per_label_pointing={l: round(v["pointing"], 3) for l, v in loc["per_label"].items()})
        res["results"][key] = r
        print(key, {k_: (round(v, 3) if isinstance(v, float) else v) for k_, v in r.items() if k_ != "per_label_pointing"}, flush=True)
        out.write_text(json.dumps(res, indent=1))
