# Fashion-MNIST typicality-as-classifier, per timestep: which t carry the garment's label? For K test images per class
# (balanced), every label's denoising error at a fixed grid of timesteps (E noise draws per t, shared by all labels and
# images, as the classifier's draws are), then the accuracy of the classifier restricted to each t-window, the window
# chosen on one half of the images and scored on the other (split-half, both ways), and the classifier simulated with n
# of these draws taken at random in a window, pruned as `label_typicality` prunes (the benchmark's settings among them).
# The null prompt is left out: argmax_c T(x | c) = argmin_c L(c) on shared draws.
# Run from the repo root:
#   OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/fashion_t_probe.py MODEL KEY [K] [E]
# MODEL: a Fashion-MNIST model folder (the benchmark's: runs/benchmark/fashion/model); KEY names the result in
# figures/benchmark/fashion_t_probe.json (and its figure, fashion_t_probe.png); K test images per class (default 20);
# E draws per grid timestep (default 2). 200 images x 50 draws x 10 labels took 9.3 min here (2 cores).
import sys, json, time, platform
from pathlib import Path
import numpy as np, torch
from diffmine.config import SEED, write_json, format_prompt, GENERIC_TEMPLATE, progress
from diffmine.models import load_model, image_tensor, repeat_conditioning, cat_conditioning
from diffmine.data import load_records, load_image, FASHION_CLASSES
from diffmine.typicality import balanced

GRID = np.arange(20, 1000, 40)          # 25 timesteps, the centres of 40-wide bins over [0, 1000)
OUT = Path("figures/benchmark/fashion_t_probe.json")

def errors(model, recs, labels, e:int, cache:Path) -> np.ndarray:
    "Denoising error (images, grid x e, labels) on shared draws; kept in `cache` (npz) and resumed from it."
    g = torch.Generator().manual_seed(SEED)
    x_shape = None
    conds = [model.conditioning(format_prompt(GENERIC_TEMPLATE, l)) for l in labels]
    t = torch.tensor(np.repeat(GRID, e), dtype=torch.long)
    done = dict(np.load(cache)) if cache.exists() else {}
    out = list(done.get("err", np.zeros((0, len(t), len(labels)), np.float32)))
    for j, r in enumerate(progress(recs[len(out):], desc="t-probe", unit="img")):
        x0 = model.encode_images(image_tensor(load_image(r.path), model.resolution, model.size_multiple, square=True)[None]).float()
        if x_shape is None:
            x_shape = tuple(x0.shape[1:]); eps_all = torch.randn((len(t), *x_shape), generator=g)
        err = torch.zeros(len(t), len(labels))
        with torch.no_grad():
            for i in range(0, len(t), 10):
                tt, ee = t[i:i + 10], eps_all[i:i + 10]
                xt, target = model.noised(x0, ee, tt)
                k, b = len(labels), len(tt)
                kw = cat_conditioning(*[repeat_conditioning(c, b) for c in conds])
                pred = model.unet(xt.repeat(k, 1, 1, 1), tt.repeat(k), **kw).sample
                err[i:i + b] = (pred.float() - target.repeat(k, 1, 1, 1)).pow(2).mean((1, 2, 3)).view(k, b).T
        out.append(err.numpy())
        if (j + 1) % 25 == 0: np.savez(cache, err=np.stack(out))
    arr = np.stack(out); np.savez(cache, err=arr)
    return arr

def window_acc(err, y, a, b, e, norm=False):
    "Accuracy of argmin over labels of the mean error over grid bins [a, b) (all e draws of each)."
    sub = err[:, a * e:b * e]
    if norm: sub = (sub - sub.mean(2, keepdims=True)) / (sub.std(2, keepdims=True) + 1e-12)   # every draw one equal vote
    return float((sub.mean(1).argmin(1) == y).mean())

def simulate(err, y, lo, hi, e, n, prune=None, reps=20):
    "Mean accuracy of the classifier with n draws taken at random from the grid's in [lo, hi), pruned as `label_typicality`."
    pool = np.arange(lo // 40 * e, hi // 40 * e)
    if n > len(pool): return None
    rng, accs = np.random.default_rng(0), []
    for _ in range(reps):
        idx = rng.permutation(pool)[:n]
        if prune:
            first = err[:, idx[:prune[0]]].mean(1)                       # (images, labels)
            keep = np.argsort(first, 1)[:, :prune[1]]                     # lowest error = highest T
            full = np.take_along_axis(err[:, idx].mean(1), keep, 1)
            pred = np.take_along_axis(keep, full.argmin(1)[:, None], 1)[:, 0]
        else: pred = err[:, idx].mean(1).argmin(1)
        accs.append(float((pred == y).mean()))
    return float(np.mean(accs))

def evals(n, prune, labels=10):
    "UNet evaluations per image in `label_typicality` (null prompt included)."
    return n * (labels + 1) if not prune else prune[0] * (labels + 1) + (n - prune[0]) * (prune[1] + 1)

def figure(res:dict, path=OUT.with_suffix(".png")):
    "Accuracy of one grid timestep's draws against t, one line per model, with the whole range's and [700, 1000)'s."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from diffmine.config import atomic_write
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, r in res["results"].items():
        key = f"finetuned {key[1:]} steps" if key[0] == "s" and key[1:].isdigit() else key   # s2000: 2000 steps
        t = [int(k) for k in r["accuracy_per_t"]]
        line, = ax.plot(t, list(r["accuracy_per_t"].values()), "o-", ms=3, label=f"{key}: one timestep ({r['draws_per_t']} draws)")
        for w, ls in (("[0, 1000)", ":"), ("[700, 1000)", "--")):
            ax.axhline(r["accuracy_window"][w], color=line.get_color(), ls=ls, lw=1, label=f"{key}: all of {w}")
    ax.axhline(0.1, color="grey", lw=0.8); ax.text(5, 0.11, "chance", color="grey", fontsize=7)
    ax.set(xlabel="timestep t", ylabel="accuracy", ylim=(0, 1), xlim=(0, 1000),
           title=f"Fashion-MNIST typicality-as-classifier by timestep ({next(iter(res['results'].values()))['images']} test images)")
    ax.legend(fontsize=7, loc="lower right"); fig.tight_layout()
    atomic_write(Path(path), lambda p: fig.savefig(p, dpi=130, format="png")); plt.close(fig)

def main():
    model_dir, key = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    e = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    labels = list(FASHION_CLASSES)
    test = load_records(Path("runs/benchmark/data/fashion-test"))
    recs = balanced(test, k * len(labels))
    y = np.array([labels.index(r.labels[0]) for r in recs])
    model = load_model(model_dir, device="cpu")
    cache = Path("runs/fashion-probe")/f"t_probe_{key}.npz"; cache.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cached = len(np.load(cache)["err"]) if cache.exists() else 0
    err = errors(model, recs, labels, e, cache)
    secs = time.time() - t0
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    if cached == len(recs) and key in res.get("results", {}): secs = res["results"][key]["seconds"]   # nothing recomputed
    nb = len(GRID)
    per_t = {int(GRID[i]): window_acc(err, y, i, i + 1, e) for i in range(nb)}
    windows = [(a, b) for a in range(nb) for b in range(a + 1, nb + 1)]
    half = np.arange(len(y)) % 2 == 0          # balanced() interleaves labels: both halves hold every class
    cv = {}
    for norm in (False, True):
        picks, scores = [], []
        for fit, test_ in ((half, ~half), (~half, half)):
            a, b = max(windows, key=lambda w: (window_acc(err[fit], y[fit], *w, e, norm), w[1] - w[0]))
            picks.append([int(a * 40), int(b * 40)]); scores.append(window_acc(err[test_], y[test_], a, b, e, norm))
        cv["z-scored" if norm else "raw"] = dict(windows_chosen=picks, held_out_accuracy=float(np.mean(scores)))
    full = {f"[{lo}, {hi})": window_acc(err, y, lo // 40, hi // 40, e) for lo, hi in
            [(0, 1000), (100, 700), (0, 400), (0, 600), (0, 200), (200, 600), (400, 1000), (700, 1000)]}
    half_draws = {f"[{lo}, {hi})": window_acc(err[:, ::e], y, lo // 40, hi // 40, 1) for lo, hi in
                  [(0, 1000), (100, 700), (0, 600), (0, 400)]} if e > 1 else None   # one draw per grid timestep
    sims = {}
    for lo, hi in [(0, 1000), (0, 600), (100, 700), (700, 1000)]:
        for n, prune in [(12, (4, 3)), (12, None), (20, None), (20, (6, 3)), (24, (8, 3)), (30, None), (30, (8, 3)),
                         (30, (10, 2)), (40, None), (40, (10, 3)), (16, None), (16, (6, 3))]:
            a = simulate(err, y, lo, hi, e, n, prune)
            if a is not None: sims[f"[{lo}, {hi}) n={n} prune={prune}"] = dict(accuracy=a, unet_evals=evals(n, prune))
    full_z = {f"[{lo}, {hi})": window_acc(err, y, lo // 40, hi // 40, e, True) for lo, hi in [(0, 1000), (0, 600), (0, 400)]}
    res.setdefault("command", "PYTHONPATH=tools python tools/fashion_t_probe.py MODEL KEY K E")
    res["grid"] = [int(v) for v in GRID]
    res.setdefault("results", {})[key] = dict(
        model=model_dir, images=len(y), draws_per_t=e, unet_evals=int(err.shape[0] * err.shape[1] * err.shape[2]),
        seconds=round(secs, 1), machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        date=time.strftime("%Y-%m-%d"), accuracy_per_t=per_t, accuracy_window=full, accuracy_window_zscored=full_z,
        accuracy_window_one_draw_per_t=half_draws, simulated_classifier=sims,
        split_half=cv, per_class_all_t={l: float((err[y == i].mean(1).argmin(1) == i).mean()) for i, l in enumerate(labels)})
    res["note"] = ("accuracy_per_t: the classifier from that grid timestep's draws alone; accuracy_window: from every grid "
                   "timestep in the window; split_half: the best window chosen on half the images, scored on the other half; "
                   "simulated_classifier: n of the grid's draws in the window at random (20 repeats), pruned (n1, keep) as "
                   "label_typicality does, with the UNet evaluations per image that setting costs (null prompt included)")
    write_json(OUT, res)
    figure(res)
    print(json.dumps(res["results"][key], indent=1))

if __name__ == "__main__":
    main()
