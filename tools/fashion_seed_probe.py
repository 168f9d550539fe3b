# Fashion-MNIST typicality-as-classifier: how much does the total accuracy depend on the draw set? The classifier's
# draws (t, noise) are shared by every image (a seed fixes them), so a draw set that favours or disfavours a class does
# so for all 1,000 of its test images. This classifies K test images per class with the benchmark's estimator
# (BENCHMARK_SETTINGS: fashion_draws, fashion_prune, fashion_t_range) under several seeds, reads the benchmark's own run
# (seed SEED, runs/benchmark/fashion/classify.csv) and the earlier 12-draw run (classify-12-draws.csv, if kept) on the same
# images, and reports per seed the accuracy, per class, and the accuracy after per-class offsets fitted on the other half
# of the images (split-half, both ways; argmax over every label's T, pruned labels included): the part of the error that
# is the draw set's class bias; and the accuracy of all these draw sets pooled (each label's T averaged over the runs).
# With --per-image, the same under draws drawn per image (`classify_records(draws_per_image=True)`, what the benchmark
# does since 2026-12-06): the runs go under "per_image", so the two ways of drawing can be compared seed for seed.
# Run from the repo root:
#   OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/fashion_seed_probe.py [--per-image] [K] [SEEDS] [MODEL]
# K test images per class (default 100), SEEDS comma-separated (default 43,44,45); MODEL another Fashion-MNIST model
# folder (e.g. the benchmark's finetune resumed to more steps): its accuracy under SEEDS goes under "other_models",
# beside the benchmark model's under the same seeds. Writes
# figures/benchmark/fashion_seed_probe.json; scores kept in runs/fashion-seeds/ (resumed). 1,000 images took ~6.5 min
# per seed here (2 cores).
import sys, json, time, platform
from pathlib import Path
import numpy as np, pandas as pd
from diffmine.config import SEED, write_json
from diffmine.models import load_model
from diffmine.data import load_records, FASHION_CLASSES
from diffmine.typicality import balanced, classify_records
from diffmine.reproduce import BENCHMARK_SETTINGS

WORK = Path("runs/benchmark/fashion")
OUT = Path("figures/benchmark/fashion_seed_probe.json")

def offsets(T, y, fit, reps=4):
    "Per-label offsets (subtracted from T) that maximise accuracy on the rows `fit` (coordinate search)."
    b = np.zeros(T.shape[1])
    for _ in range(reps):
        for j in range(T.shape[1]):
            grid = b[j] + np.linspace(-1e-3, 1e-3, 81)
            acc = [((T[fit] - np.r_[b[:j], g, b[j + 1:]]).argmax(1) == y[fit]).mean() for g in grid]
            b[j] = grid[int(np.argmax(acc))]
    return b

def summary(df, labels):
    "Accuracy, per class, and split-half offset-calibrated accuracy of one run's scores."
    T = df[[f"T:{l}" for l in labels]].to_numpy(); y = df.label.map({l: i for i, l in enumerate(labels)}).to_numpy()
    half = np.arange(len(df)) % 2 == 0
    cal = []
    for fit, test in ((half, ~half), (~half, half)):
        cal.append(((T[test] - offsets(T, y, fit)).argmax(1) == y[test]).mean())
    return dict(images=len(df), accuracy=float((df.label == df.pred).mean()),
                accuracy_argmax_all_labels=float((T.argmax(1) == y).mean()),
                accuracy_offsets_split_half=float(np.mean(cal)),
                per_label={l: float((g.label == g.pred).mean()) for l, g in df.groupby("label")})

def benchmark_run(per_image:bool) -> Path:
    "The benchmark's own scores (seed SEED) drawn the asked way: classify.csv, or the shared-draw run set aside beside it."
    f = WORK/"classify.csv"
    made = json.loads(f.with_suffix(".json").read_text()).get("draws_per_image", False) if f.exists() else None
    return f if made == per_image else WORK/"shared-draws"/"classify.csv"

def main():
    per_image = "--per-image" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--per-image"]
    k = int(args[0]) if len(args) > 0 else 100
    seeds = [int(s) for s in (args[1] if len(args) > 1 else "43,44,45").split(",")]
    st, labels = BENCHMARK_SETTINGS, list(FASHION_CLASSES)
    recs = balanced(load_records(Path("runs/benchmark/data/fashion-test")), k * len(labels))
    rels = [r.rel for r in recs]
    if per_image: return per_image_runs(recs, seeds, labels, st, k)
    if len(args) > 2: return other_model(Path(args[2]), recs, seeds, labels, st)
    model = load_model(WORK/"model", device="cpu")
    res = dict(command=f"PYTHONPATH=tools .venv/bin/python tools/fashion_seed_probe.py {k} {','.join(map(str, seeds))}",
               model=str(WORK/"model"), images=len(recs), draws=st["fashion_draws"], prune=list(st["fashion_prune"]),
               t_range=list(st["fashion_t_range"]), machine=f"{platform.machine()}, 2 torch threads",
               date=time.strftime("%Y-%m-%d"), runs={})
    for name, f in ((f"seed {SEED} (the benchmark's run)", benchmark_run(False)),
                    (f"seed {SEED}, 12 draws pruned (4, 3) (the earlier run)", benchmark_run(False).parent/"classify-12-draws.csv")):
        if f.exists(): res["runs"][name] = summary(pd.read_csv(f).set_index("rel").loc[rels].reset_index(), labels)
    out = Path("runs/fashion-seeds"); out.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        t0 = time.time()
        df = classify_records(model, recs, labels, out/f"classify-s{s}.csv", n=st["fashion_draws"], seed=s,
                              prune=tuple(st["fashion_prune"]), t_range=tuple(st["fashion_t_range"]))
        res["runs"][f"seed {s}"] = dict(summary(df, labels), seconds=round(time.time() - t0, 1))
        write_json(OUT, res)
    # every seed's draws together (each label's T averaged over the runs; a label pruned in a run counts its first draws)
    runs = [pd.read_csv(benchmark_run(False)).set_index("rel").loc[rels]] + \
           [pd.read_csv(out/f"classify-s{s}.csv").set_index("rel").loc[rels] for s in seeds]
    T = np.mean([r[[f"T:{l}" for l in labels]].to_numpy() for r in runs], 0)
    y = runs[0].label.map({l: i for i, l in enumerate(labels)}).to_numpy()
    res["pooled"] = dict(runs=len(runs), draws=len(runs) * st["fashion_draws"], accuracy=float((T.argmax(1) == y).mean()),
                         per_label={l: float((T.argmax(1) == y)[y == i].mean()) for i, l in enumerate(labels)})
    acc = [v["accuracy"] for n, v in res["runs"].items() if "12 draws" not in n]
    res["accuracy_over_seeds"] = dict(mean=float(np.mean(acc)), sd=float(np.std(acc, ddof=1)), min=min(acc), max=max(acc))
    write_json(OUT, res)
    for n, v in res["runs"].items():
        print(f"{n}: {v['accuracy']:.3f} (offsets {v['accuracy_offsets_split_half']:.3f})",
              {l: round(a, 2) for l, a in v["per_label"].items()})
    print("pooled:", res["pooled"]["draws"], "draws", round(res["pooled"]["accuracy"], 3), "over seeds:", res["accuracy_over_seeds"])

def other_model(model_dir:Path, recs, seeds, labels, st):
    "Accuracy of another model under `seeds`, beside the benchmark model's under the same seeds (same images)."
    if not OUT.exists(): sys.exit(f"{OUT}: missing; run this tool without MODEL first (the benchmark model's seeds)")
    res, model = json.loads(OUT.read_text()), load_model(model_dir, device="cpu")
    out = Path("runs/fashion-seeds")/model_dir.parent.name; out.mkdir(parents=True, exist_ok=True)
    rels, runs = [r.rel for r in recs], {}
    ours = {s: benchmark_run(False) if s == SEED else Path("runs/fashion-seeds")/f"classify-s{s}.csv" for s in seeds}
    for s, f in ours.items():         # checked before any classification
        if not f.exists(): sys.exit(f"{f}: the benchmark model's scores under seed {s} are missing; run this tool without MODEL first")
    for s in seeds:
        df = classify_records(model, recs, labels, out/f"classify-s{s}.csv", n=st["fashion_draws"], seed=s,
                              prune=tuple(st["fashion_prune"]), t_range=tuple(st["fashion_t_range"]))
        base = pd.read_csv(ours[s])
        base = base.set_index("rel").loc[rels]
        runs[f"seed {s}"] = dict(accuracy=float((df.label == df.pred).mean()), benchmark_model=float((base.label == base.pred).mean()))
    steps = int(pd.read_csv(model_dir/"train_log.csv").step.max())
    res.setdefault("other_models", {})[str(model_dir)] = dict(steps=steps, images=len(recs), runs=runs,
        mean=float(np.mean([v["accuracy"] for v in runs.values()])),
        benchmark_model_mean=float(np.mean([v["benchmark_model"] for v in runs.values()])))
    write_json(OUT, res)
    print(model_dir, steps, "steps:", runs)

def per_image_runs(recs, seeds, labels, st, k):
    "The benchmark's estimator with draws drawn per image under `seeds` (and the benchmark's own run, seed SEED), on the same images."
    if not OUT.exists(): sys.exit(f"{OUT}: missing; run this tool without --per-image first (the shared draw sets)")
    res, rels = json.loads(OUT.read_text()), [r.rel for r in recs]
    runs, out = {}, Path("runs/fashion-seeds")/"per-image"
    own = benchmark_run(True)
    if own.exists() and own.parent == WORK:
        runs[f"seed {SEED} (the benchmark's run)"] = summary(pd.read_csv(own).set_index("rel").loc[rels].reset_index(), labels)
    model = load_model(WORK/"model", device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        t0 = time.time()
        df = classify_records(model, recs, labels, out/f"classify-s{s}.csv", n=st["fashion_draws"], seed=s,
                              prune=tuple(st["fashion_prune"]), t_range=tuple(st["fashion_t_range"]), draws_per_image=True)
        runs[f"seed {s}"] = dict(summary(df, labels), seconds=round(time.time() - t0, 1))
    acc = [v["accuracy"] for v in runs.values()]
    spread = lambda rs: {l: round(max(v["per_label"][l] for v in rs) - min(v["per_label"][l] for v in rs), 3) for l in labels}
    shared = [v for n, v in res["runs"].items() if "12 draws" not in n]
    res["per_image"] = dict(command=f"PYTHONPATH=tools .venv/bin/python tools/fashion_seed_probe.py --per-image {k} "
                                    f"{','.join(map(str, seeds))}", date=time.strftime("%Y-%m-%d"), runs=runs,
                            accuracy_over_seeds=dict(mean=float(np.mean(acc)), sd=float(np.std(acc, ddof=1)), min=min(acc), max=max(acc)),
                            per_label_range=spread(list(runs.values())), shared_per_label_range=spread(shared))
    write_json(OUT, res)
    for n, v in runs.items(): print(f"per image, {n}: {v['accuracy']:.3f}", {l: round(a, 2) for l, a in v["per_label"].items()})
    print("over seeds:", res["per_image"]["accuracy_over_seeds"])
    print("per-class range, per image:", res["per_image"]["per_label_range"])
    print("per-class range, shared:   ", res["per_image"]["shared_per_label_range"])

if __name__ == "__main__":
    main()
