# Issue 17 probe: the base's pointing game is above its target (<= 0.3) on Places (0.55), X-ray (0.40) and Geo (0.303).
# Does the base know the labels, or does its map find some element kinds whatever the label says? Control: the same
# typicality (same model, images, draws, seed, t-range), each image prompted with ANOTHER label (the next one in label
# order), scored against its TRUE label's mask. A model that knows the labels loses its pointing under the wrong
# prompt; a map that only finds salient element kinds keeps it. Run for the base and the finetuned model
# (runs/benchmark/<name>/model, the benchmark's finetune). Places also with the template's domain words as the null
# prompt ("An image."), i.e. T measuring only what the label word adds (its protocol's null is "").
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/wrong_prompt_probe.py [--base-only] [DATASET ...]
# (--base-only: the base's rows only, which need no finetune on this machine)
import sys, dataclasses
from pathlib import Path
import numpy as np
from probe_score import SETTINGS as st, PER_LABEL, results_file, save
from diffmine.benchmark import mined_records, _prompted, standins
from diffmine.config import SEED
from diffmine.models import BASE_MODEL
from diffmine.synth import STANDIN_LAYOUTS, load_groundtruth
from diffmine.typicality import compute_typicality
from diffmine.runfolder import load_index, load_typicality
from diffmine.evaluation import pointing_game, mask_scores

work, out = Path("runs/benchmark").resolve(), Path("figures/benchmark/wrong_prompt_probe.json")   # absolute, as the benchmark records
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/wrong_prompt_probe.py DATASET")

def score(run, gt):
    "Pointing game and AP of each image's map against its TRUE label's mask (whatever label prompted it)."
    pts, aps = [], []
    for r in load_index(run).itertuples():
        mk = gt.label_mask(r.rel, gt.label_of(r.rel))
        if not mk.any(): continue
        m = load_typicality(run, r.key)
        pts.append(pointing_game(m, mk)); aps.append(mask_scores(m, mk)["ap"])
    return dict(images=len(pts), pointing=float(np.mean(pts)), ap=float(np.mean(aps)))

base_only = "--base-only" in sys.argv
for name in [a for a in sys.argv[1:] if a != "--base-only"] or ["places", "xray", "geo", "cars", "faces"]:
    root, recs = standins(work, (name,), st["size"], st["seed"], PER_LABEL)[name]
    gt, mined = load_groundtruth(root), mined_records(recs, st)
    labels = sorted({r.labels[0] for r in mined})
    shifted = [dataclasses.replace(r, labels=(labels[(labels.index(r.labels[0]) + 1) % len(labels)],)) for r in mined]
    variants = [("base", BASE_MODEL, "right", mined, {}), ("base", BASE_MODEL, "wrong", shifted, {}),
                ("finetuned", work/name/"model", "right", mined, {}), ("finetuned", work/name/"model", "wrong", shifted, {})]
    if name == "places":
        variants += [("base", BASE_MODEL, "right, null 'An image.'", mined, dict(null_prompt="An image.")),
                     ("finetuned", work/name/"model", "right, null 'An image.'", mined, dict(null_prompt="An image."))]
    for model, folder, prompt, rs, kw in variants:
        key = f"{name} {model} {prompt} label"
        if key in res["results"] or (base_only and model != "base"): continue
        tag = prompt.replace(" ", "").replace(",", "-").replace("'", "").replace(".", "")
        run = work/name/(model if (prompt, kw) == ("right", {}) else f"prompt-{tag}-{model}")   # right: the benchmark's own run
        compute_typicality(_prompted(folder, name), rs, run, n=st["draws"], seed=SEED, layout=STANDIN_LAYOUTS[name],
                           limit=len(rs), **kw)
        save(res, out, key, dict(dataset=name, model=model, prompt=prompt, draws=st["draws"], **score(run, gt)))
