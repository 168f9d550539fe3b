"""The Doersch et al. 2012 baseline: HOG shape and invariances on hand-made images, nearest-neighbour ranking of a
planted element repeated in one label only, the patches.csv format (read by load_patches and the metrics), bad
inputs and determinism (the scaling benchmark that times it is tested in test_speed.py)."""
import json
import numpy as np, pandas as pd, pytest, torch
from PIL import Image

from diffmine.baseline import (hog_cells, rgb_to_lab, patch_geometry, hog_descriptors, patch_bank, sample_seeds,
                               rank_seeds, mine_doersch)
from diffmine.config import DiffmineError
from diffmine.data import Record, load_records
from diffmine.evaluation import patch_quality
from diffmine.patches import PATCH_COLUMNS, load_patches
from diffmine.synth import make_planted, load_groundtruth

MIRROR = [(-i) % 9 for i in range(9)]


def test_hog_shape_and_edges():
    img = np.zeros((24, 40, 3), np.float32)
    assert hog_cells(img, 8).shape == (1, 9, 3, 5)
    assert hog_cells(np.zeros((2, 17, 33, 3), np.uint8), 4).shape == (2, 9, 4, 8)   # partial cells are dropped
    v = np.zeros((8, 8, 3), np.float32); v[:, 4:] = 1                              # vertical edge: bin 0 only
    h = hog_cells(v, 8)[0, :, 0, 0]
    assert h[0] > 0 and torch.all(h[1:] == 0)
    d = np.zeros((16, 16, 3), np.float32); d[np.add.outer(np.arange(16), np.arange(16)) >= 16] = 1   # 45 degree edge
    h = hog_cells(d, 16)[0, :, 0, 0]
    assert int(h.argmax()) in (2, 3) and h[[2, 3]].sum() > 0.9 * h.sum()          # 45 deg: between 40 and 60


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hog_invariances(seed):
    img = np.random.default_rng(seed).random((16, 32, 3)).astype(np.float32)
    h = hog_cells(img, 4)
    torch.testing.assert_close(hog_cells(img[:, ::-1], 4), h[:, MIRROR].flip(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hog_cells(img[::-1], 4), h[:, MIRROR].flip(-2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hog_cells(img + 0.3, 4), h, atol=1e-5, rtol=1e-5)       # brightness
    torch.testing.assert_close(hog_cells(img * 0.25, 4), 0.25 * h, atol=1e-5, rtol=1e-5)
    # descriptors: contrast changes leave the HOG part of a textured patch (almost) unchanged
    g = patch_geometry(8)
    d1, _, _ = hog_descriptors(img[None], g)
    d2, _, _ = hog_descriptors((img * 0.8)[None], g)
    nh = g.cells ** 2 * 9
    assert torch.nn.functional.cosine_similarity(d1[..., :nh], d2[..., :nh], dim=-1).min() > 0.99


def test_lab_and_geometry():
    lab = rgb_to_lab(np.array([[[0.5, 0.5, 0.5]]], np.float32))[0, :, 0, 0]
    assert abs(lab[1]) < 1e-3 and abs(lab[2]) < 1e-3 and 53 < lab[0] < 54           # mid grey: L* = 53.39
    for k in (4, 8, 16, 50, 64, 100):
        g = patch_geometry(k)
        assert g.k % g.cell == 0 and g.cell >= 2 and 2 <= g.cells <= 8 and abs(g.k - k) <= g.cell
    with pytest.raises(ValueError, match="too small"): patch_geometry(2)


def _planted_one_label(tmp_path, n=8, size=32):
    "Label 'a' has a red plus in every image, label 'b' never; both have the same kind of random texture background."
    rng, recs, plus = np.random.default_rng(3), [], {}
    for lab in "ab":
        for i in range(n):
            small = ((0.3 + 0.4 * rng.random((4, 4, 3))) * 255).astype(np.uint8)      # smooth, muted texture
            img = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC)).copy()
            rel = f"{lab}/{i:02d}.png"
            if lab == "a":                                                        # a 12 px red plus
                y, x = (4 * int(v) for v in rng.integers(0, (size - 12) // 4 + 1, 2))   # on the 4 px corner grid
                img[y + 4:y + 8, x:x + 12] = (230, 20, 20); img[y:y + 12, x + 4:x + 8] = (230, 20, 20)
                plus[rel] = (x, y, x + 12, y + 12)
            (tmp_path/lab).mkdir(parents=True, exist_ok=True); Image.fromarray(img).save(tmp_path/rel)
            recs.append(Record(tmp_path/rel, lab, rel))
    return recs, plus


def _cover(box, p):
    if p is None: return 0.
    w, h = min(box[2], p[2]) - max(box[0], p[0]), min(box[3], p[3]) - max(box[1], p[1])
    return max(w, 0) * max(h, 0) / ((box[2] - box[0]) * (box[3] - box[1]))


def test_nearest_neighbour_ranking_finds_the_planted_element(tmp_path):
    recs, plus = _planted_one_label(tmp_path)
    bank = patch_bank(recs, k=8)
    seeds = rank_seeds(bank, sample_seeds(bank, 8), knn=7)
    on = np.array([_cover(bank.box(r.image, r.corner), plus.get(bank.records[r.image].rel)) >= 0.5 for r in seeds.itertuples()])
    seeds["on"] = on
    a = seeds[seeds.label == 0].sort_values(["share", "dist"], ascending=[False, True], kind="mergesort")
    assert a.on.iloc[:3].all() and a.share.iloc[0] == 1.0         # the best seeds of label a lie on the plus
    # seeds on the plus find mostly label-a images; seeds on the texture (shared by both labels) do not
    assert a[a.on].share.mean() > a[~a.on].share.mean() + 0.2
    assert a[a.on].share.mean() > seeds[seeds.label == 1].share.mean() + 0.2


def test_output_format_bad_inputs_and_determinism(tmp_path):
    recs, plus = _planted_one_label(tmp_path/"data")
    bad = tmp_path/"data"/"b"/"broken.png"; bad.write_bytes(b"not a png")
    recs = recs + [Record(bad, "b", "b/broken.png")]
    kw = dict(k=8, knn=5, detectors=3, rounds=2, negatives=300, hard=100, per_detector=3)
    df = mine_doersch(recs, tmp_path/"run", **kw)
    assert list(df.columns) == PATCH_COLUMNS
    back = load_patches(tmp_path/"run", "T")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert set(df.ranking) == {"T"} and set(df.label) == {"a", "b"}
    for lab, g in df.groupby("label"):
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
    assert ((df.x1 - df.x0 == 8) & (df.y1 - df.y0 == 8) & (df.x0 >= 0) & (df.y1 <= 32)).all()
    for _, g in df.groupby("rel"):                      # zero overlap inside an image, touching included
        b = g[["x0", "y0", "x1", "y1"]].to_numpy()
        for i in range(len(b)):
            for j in range(i):
                assert b[i, 2] < b[j, 0] or b[j, 2] < b[i, 0] or b[i, 3] < b[j, 1] or b[j, 3] < b[i, 1]
    top = df[df.label == "a"].head(3)
    assert np.mean([_cover((r.x0, r.y0, r.x1, r.y1), plus[r.rel]) for r in top.itertuples()]) >= 0.5
    skipped = pd.read_csv(tmp_path/"run"/"bad_inputs.csv")
    assert skipped.astype(str).apply(lambda c: c.str.contains("broken.png")).any().any()
    meta = json.loads((tmp_path/"run"/"baseline.json").read_text())
    assert meta["images"] == 16 and set(meta["seconds"]) == {"descriptors", "nearest_neighbours", "svm", "output"}
    det = pd.read_csv(tmp_path/"run"/"detectors.csv")
    assert set(det.columns) >= {"label", "detector", "purity"} and det.purity.between(0, 1).all()
    again = mine_doersch(recs, tmp_path/"run2", **kw)
    pd.testing.assert_frame_equal(again, df)


def test_one_label_is_refused(tmp_path):
    recs, _ = _planted_one_label(tmp_path)
    with pytest.raises(DiffmineError, match="at least two labels"):
        mine_doersch([r for r in recs if r.label == "a"], tmp_path/"run", k=8)


def test_metrics_read_the_baseline_on_planted_data(tmp_path):
    root = make_planted(tmp_path/"planted", n_per_label=12, seed=0)
    recs = load_records(root)
    df = mine_doersch(recs, tmp_path/"run", knn=8, detectors=4, rounds=2, negatives=500, hard=200, per_detector=3)
    q = patch_quality(df, root, k=5)["T"]
    assert set(q["per_label"]) == set(load_groundtruth(root).labels)
    assert 0 <= q["precision"] <= 1 and q["precision"] > 0.1      # far above the ~0.08 element area
