# Issue 15 probe: how much of the per-draw variance of typicality's summand d = |pred_null - target|^2 - |pred_cond -
# target|^2 (per latent pixel) do known-mean functions of the draw (t, eps) explain? A control variate f with E[f] = 0
# can be subtracted, d - b f, without changing the mean; the best linear one removes the share R^2 of Var(d).
# Oracle test: per image and latent pixel, regress d on features of (t, eps) over half of the draws, measure the
# residual variance on the other half (out of sample). Features (per channel c of the pixel): eps_c, eps_c^2 - 1, both
# times a t-basis (1, tau, tau^2), the t-basis alone (centered), and optionally the 3x3 neighbourhood's eps.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/cv_probe.py [DATASET] [IMAGES_PER_LABEL] [DRAWS]
import sys, json, time
from pathlib import Path
import numpy as np, torch
from diffmine.reproduce import BENCHMARK_SETTINGS
from diffmine.benchmark import standins, _prompted
from diffmine.config import format_prompt
from diffmine.data import load_image
from diffmine.models import image_tensor
from diffmine.synth import STANDIN_LAYOUTS
from diffmine.typicality import draws, mining_t_range, resolve_prompts, paired_predictions, paired_difference

name = sys.argv[1] if len(sys.argv) > 1 else "cars"
per = int(sys.argv[2]) if len(sys.argv) > 2 else 3
n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
torch.set_num_threads(2)
st = dict(BENCHMARK_SETTINGS)
work = Path("runs/benchmark")
root, recs = standins(work, (name,), st["size"], st["seed"], {"xray": st["xray_per_label"]})[name]
model = _prompted(work/name/"model", name)
template, null_prompt = resolve_prompts(model, None, None, STANDIN_LAYOUTS[name])
lo, hi = mining_t_range(model, name)
T = model.scheduler.config.num_train_timesteps
chosen, seen = [], {}
for r in recs:
    if seen.get(r.label, 0) < per: chosen.append(r); seen[r.label] = seen.get(r.label, 0) + 1
null = model.conditioning(null_prompt)

def features(t, eps, neighbours):
    "(n, F, C?, h, w) design per pixel: returns (n, h, w, F)."
    tau = (t.double() - (lo + hi) * T / 2) / ((hi - lo) * T / 2)           # in [-1, 1)
    tb = torch.stack([torch.ones_like(tau), tau, tau ** 2], 1)              # (n, 3)
    e = eps.double()                                                        # (n, C, h, w)
    parts = [e, e ** 2 - 1]
    if neighbours:
        p = torch.nn.functional.pad(e, (1, 1, 1, 1))
        h, w = e.shape[2:]
        parts += [p[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    base = torch.cat(parts, 1)                                              # (n, P, h, w)
    X = (base[:, :, None] * tb[:, None, :, None, None]).flatten(1, 2)       # (n, 3P, h, w)
    tcols = torch.stack([tau, tau ** 2 - 1 / 3], 1)[:, :, None, None].expand(-1, -1, *e.shape[2:])
    return torch.cat([X, tcols], 1).permute(0, 2, 3, 1).numpy()            # (n, h, w, F)

out = dict(dataset=name, images=len(chosen), draws=n, t_range=[lo, hi], date=time.strftime("%Y-%m-%d"),
           command=f"OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/cv_probe.py {name} {per} {n}", results=[])
t0 = time.time()
for i, r in enumerate(chosen):
    x0 = model.encode_images(image_tensor(load_image(r.path), st["size"], model.size_multiple)[None])
    t, eps = draws(tuple(x0.shape[1:]), n, (lo, hi), T, seed=1000 + i)
    cond = model.conditioning(format_prompt(template, r.labels))
    d = torch.cat([paired_difference(p, tg) for p, tg in paired_predictions(model, x0, cond, null, t, eps, 100)]).double().numpy()
    res = dict(label=r.label, var_d=float(d.var(0).mean()), mean_d=float(d.mean()))
    a, b = slice(0, n // 2), slice(n // 2, n)
    for tag, nb in (("centre", False), ("3x3", True)):
        X = features(t, eps, nb)
        h, w = d.shape[1:]
        resid = np.empty((n - n // 2, h, w))
        for y in range(h):
            for x in range(w):
                Xa = X[a, y, x]; Xb = X[b, y, x]
                coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(Xa)), Xa], d[a, y, x], rcond=None)
                resid[:, y, x] = d[b, y, x] - Xb @ coef[1:]                # the control variate has mean 0: keep the intercept's part
        res[f"var_ratio_{tag}"] = float(d[b].var(0).mean() / resid.var(0).mean())
        res[f"features_{tag}"] = int(X.shape[-1])
    # the image mean (what the Spearman of image scores ranks): regress it on the t-basis and global eps statistics
    dm = d.mean((1, 2))
    tau = (t.double().numpy() - (lo + hi) * T / 2) / ((hi - lo) * T / 2)
    e = eps.double().numpy()
    G = np.c_[tau, tau ** 2 - 1 / 3, (e ** 2).mean((2, 3)) - 1, e.mean((2, 3))]                      # (n, 2 + 2C)
    G = np.c_[G, G[:, 2:] * tau[:, None], G[:, 2:] * (tau[:, None] ** 2)]
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(n // 2), G[a]], dm[a], rcond=None)
    res["var_ratio_image_mean"] = float(dm[b].var() / (dm[b] - G[b] @ coef[1:]).var())
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(n // 2), G[a, :2]], dm[a], rcond=None)
    res["var_ratio_image_mean_t_only"] = float(dm[b].var() / (dm[b] - G[b, :2] @ coef[1:]).var())
    out["results"].append(res)
    print(i, r.label, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}, f"{time.time() - t0:.0f}s", flush=True)
    for tag in ("centre", "3x3", "image_mean", "image_mean_t_only"):          # summary rewritten after every image
        v = [q[f"var_ratio_{tag}"] for q in out["results"]]
        out[f"var_ratio_{tag}_mean"], out[f"var_ratio_{tag}_range"] = float(np.mean(v)), [min(v), max(v)]
    Path("figures/benchmark").mkdir(parents=True, exist_ok=True)
    Path("figures/benchmark/cv_probe.json").write_text(json.dumps(out, indent=1))
print(json.dumps({k: v for k, v in out.items() if k != "results"}, indent=1))
