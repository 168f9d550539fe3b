# Does diffmine-base's autoencoder keep what tells Fashion-MNIST's garments apart? A linear classifier (logistic
# regression on the 28 x 28 grey pixels) is trained and tested three ways: on the original images; on the images
# after the model's autoencoder (128 px -> 16 x 16 latent -> 128 px, then back to 28 x 28), trained and tested on such
# reconstructions; and on the originals reduced to 16 x 16 pixels (the latent's grid, as plain pixels) and back. If the
# reconstructions classify as well as the originals, the latent is not what the typicality classifier lacks.
# Run from the repo root:
#   OMP_WAIT_POLICY=PASSIVE PYTHONPATH=tools .venv/bin/python tools/fashion_vae_probe.py [MODEL] [TRAIN_K] [TEST_K]
# MODEL a Fashion-MNIST model folder (default runs/benchmark/fashion/model; its autoencoder is diffmine-base's),
# TRAIN_K / TEST_K images per class (default 1000 / 100, the test images those of tools/fashion_seed_probe.py).
# Writes figures/benchmark/fashion_vae_probe.json. About 5 min here (2 cores).
import sys, time, platform
from pathlib import Path
import numpy as np, torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from diffmine.config import write_json, progress
from diffmine.models import load_model, image_tensor
from diffmine.data import load_records, load_image, FASHION_CLASSES
from diffmine.typicality import balanced

OUT = Path("figures/benchmark/fashion_vae_probe.json")

def arrays(model, recs, batch=50):
    "(originals, reconstructions, 16 x 16 reductions), each (N, 784) in [0, 1] at 28 x 28."
    orig, rec, low = [], [], []
    for i in progress(range(0, len(recs), batch), desc="autoencode", unit="batch"):
        imgs = [load_image(r.path) for r in recs[i:i + batch]]
        x = torch.stack([image_tensor(im, model.resolution, model.size_multiple, square=True) for im in imgs])
        with torch.no_grad(): y = model.decode_latents(model.encode_images(x))
        for im, yy in zip(imgs, y):
            g = lambda a: np.asarray(a.convert("L").resize((28, 28), Image.BILINEAR), np.float32).ravel() / 255
            orig.append(g(im))
            rec.append(g(Image.fromarray(((yy.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8))))
            low.append(g(im.convert("L").resize((16, 16), Image.BOX).resize((28, 28), Image.BILINEAR)))
    return np.stack(orig), np.stack(rec), np.stack(low)

def fit_score(xtr, ytr, xte, yte, labels):
    s = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=500, C=0.05).fit(s.transform(xtr), ytr)
    p = clf.predict(s.transform(xte))
    return dict(accuracy=float((p == yte).mean()), per_label={l: float((p == yte)[yte == i].mean()) for i, l in enumerate(labels)})

def main():
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/benchmark/fashion/model")
    ktr = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    kte = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    labels, t0 = list(FASHION_CLASSES), time.time()
    model = load_model(model_dir, device="cpu")
    tr = balanced(load_records(Path("runs/benchmark/data/fashion-train")), ktr * len(labels))
    te = balanced(load_records(Path("runs/benchmark/data/fashion-test")), kte * len(labels))
    ytr = np.array([labels.index(r.labels[0]) for r in tr]); yte = np.array([labels.index(r.labels[0]) for r in te])
    (otr, rtr, ltr), (ote, rte, lte) = arrays(model, tr), arrays(model, te)
    psnr = float(np.mean(10 * np.log10(1 / np.maximum(((ote - rte) ** 2).mean(1), 1e-10))))
    res = dict(command=f"PYTHONPATH=tools .venv/bin/python tools/fashion_vae_probe.py {model_dir} {ktr} {kte}",
               model=str(model_dir), train_images=len(tr), test_images=len(te), classifier="logistic regression, 784 grey pixels, C=0.05",
               psnr_28px_db=psnr, originals=fit_score(otr, ytr, ote, yte, labels),
               reconstructions=fit_score(rtr, ytr, rte, yte, labels),
               originals_model_on_reconstructions=fit_score(otr, ytr, rte, yte, labels),
               pixels_16=fit_score(ltr, ytr, lte, yte, labels),
               seconds=round(time.time() - t0, 1), machine=f"{platform.machine()}, 2 torch threads", date=time.strftime("%Y-%m-%d"))
    write_json(OUT, res)
    for k in ("originals", "reconstructions", "originals_model_on_reconstructions", "pixels_16"):
        print(k, round(res[k]["accuracy"], 3), {l: round(v, 2) for l, v in res[k]["per_label"].items()})
    print("PSNR at 28 px", round(psnr, 2), "dB;", res["seconds"], "s")

if __name__ == "__main__":
    main()
