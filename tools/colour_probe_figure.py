# Draws figures/benchmark/colour_probe.png from colour_probe.json (and steps_per_label_probe.json, size_probe.json where they have the stand-in)
# beside the quality benchmark's own per-label pointing game (quality.json): one panel per stand-in, one bar group per label.
# Run: .venv/bin/python tools/colour_probe_figure.py
import json
from pathlib import Path
import numpy as np
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
from diffmine.synth import FTT_STYLES, CARDB_STYLES, FTT_DECADES, CARDB_DECADES

STYLE = {"faces": FTT_STYLES, "cars": CARDB_STYLES}
PALE = {"faces": FTT_DECADES[5], "cars": CARDB_DECADES[5]}   # the sixth design: crescents at saturation 0.3-0.5

bench = Path("figures/benchmark")
q = json.loads((bench/"quality.json").read_text())["standins"]
probe = json.loads((bench/"colour_probe.json").read_text())["results"]
def results(file): return json.loads((bench/file).read_text())["results"] if (bench/file).exists() else {}
EXTRA = {**results("steps_per_label_probe.json"), **results("size_probe.json")}   # "<name> <what changed>" -> row
names = sorted({k.split(":")[0] for k in probe}, key=["faces", "cars"].index)
fig, axes = plt.subplots(len(names), 1, figsize=(11, 3.3*len(names)), squeeze=False)
for ax, name in zip(axes[:, 0], names):
    rows = [("benchmark (400 steps)", {l: v["pointing"] for l, v in q[name]["finetuned"]["localisation"]["per_label"].items()})]
    rows += [(k.split(": ", 1)[1], v["per_label_pointing"]) for k, v in probe.items() if k.startswith(name + ":")]
    rows += [("benchmark data, " + k[len(name) + 1:], v["per_label_pointing"]) for k, v in EXTRA.items() if k.startswith(name + " ")]
    labels, w = list(rows[0][1]), 0.8/len(rows)
    for i, (what, per) in enumerate(rows):
        ax.bar(np.arange(len(labels)) + (i - (len(rows) - 1)/2)*w, [per.get(l, np.nan) for l in labels], w, label=what)
    styled = {l for k, v in probe.items() if k.startswith(name + ":") for l in v["changed_labels"]}
    what = {l: STYLE[name].get(l, "pale" if l == PALE[name] else "") for l in labels}
    ax.set_xticks(range(len(labels)), [l + ("*" if l in styled else "") + "\n" + what[l] for l in labels])
    ax.axhline(0.9, color="k", lw=0.8, ls="--"); ax.set_ylim(0, 1.05); ax.set_ylabel("pointing game")
    ax.set_title(f"{name}: per-label pointing game (* = a label a variant changes; below it, what hides its colour in the benchmark; dashed: the 0.9 target)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
fig.tight_layout(); fig.savefig(bench/"colour_probe.png", dpi=110)
print(bench/"colour_probe.png")
