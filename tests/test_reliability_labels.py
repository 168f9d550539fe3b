"""Figures draw labels in any script (日本, Россия) without a missing-glyph warning: with a CJK font where one
is installed (Debian's fonts-droid-fallback, which `make install` adds as root), as code points where none is; never
as boxes. Also the typicality colour bar, and '1 patch' rather than '1 patches'."""
import logging, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

import diffmine.figures as F
from diffmine.testing import fake_run

LABELS = ["日本", "Россия"]


@pytest.fixture
def run(tmp_path):
    "A typicality run of real images labelled 日本 and Россия, with patches and clusters."
    rng = np.random.default_rng(0)
    items = []
    for i, lab in enumerate(LABELS * 2):
        m = np.zeros((24, 24), np.float32); m[4:12, 4:12] = 1 + i
        items.append((f"{i}.png", lab, m))
    run = fake_run(tmp_path/"run", items)
    idx = pd.read_csv(run/"index.csv", keep_default_na=False)
    for p in idx.path:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(p)
    rows = [dict(key=r.key, rel=r.rel, path=r.path, label=r.label, x0=4, y0=4, x1=12, y1=12, typicality=r.typicality,
                 rank=1, ranking="T", cluster=0, cluster_rank=1, member_rank=1, distance=0.0, cluster_size=1,
                 cluster_median=r.typicality) for r in idx.itertuples()]
    return run, pd.DataFrame(rows)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def _draw_all(run, table, tmp_path, caplog):
    "Every figure with these labels, saved as PNG and PDF; no missing-glyph warning or font complaint allowed."
    figs = [F.typicality_figure(run, per_label=2), F.patches_figure(table, n=2), F.clusters_figure(table, LABELS[0])]
    texts = [t for f in figs for t in _texts(f)]
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="matplotlib"):
        warnings.simplefilter("error")                      # "Glyph 26085 ... missing from font(s)" would raise
        for i, f in enumerate(figs): F.save_figure(f, tmp_path/f"fig{i}")
    assert not [r for r in caplog.records if "font" in r.getMessage().lower()], caplog.text
    return texts


def test_cjk_and_cyrillic_labels_render_without_boxes(run, tmp_path, caplog):
    texts = _draw_all(*run, tmp_path, caplog)
    assert "Россия" in texts                                 # DejaVu Sans has Cyrillic
    if "Droid Sans Fallback" in F.label_fonts() or any("CJK" in f or "WenQuanYi" in f for f in F.label_fonts()):
        assert "日本" in texts
    else: assert "U+65E5U+672C" in texts                     # no CJK font here: code points, not boxes


def test_without_a_cjk_font_labels_become_code_points(run, tmp_path, caplog, monkeypatch):
    names, faces = F._label_fonts()
    monkeypatch.setattr(F, "_label_fonts", lambda: (names[:1], faces[:1]))       # only DejaVu Sans
    texts = _draw_all(*run, tmp_path, caplog)
    assert "U+65E5U+672C" in texts and "Россия" in texts and "日本" not in texts


def test_typicality_colour_bar_and_plurals(run):
    fig = F.typicality_figure(run[0], per_label=2)
    legend = fig.axes[-1].get_xlabel()
    assert "null prompt minus under the label's prompt" in legend and "T > 0 (typical of the label)" in legend
    assert f"sigma {F.BLUR_PER_PX:.1%}" in legend
    fig = F.clusters_figure(run[1].drop_duplicates("label"), LABELS[1])             # a cluster of one patch
    assert any(t.startswith("#1\n1 patch\n") for t in _texts(fig))
    plt.close("all")
