"""Patch mining: pooling against a brute-force reference, zero-overlap suppression (touching counts as overlap),
five per image and top-K per label, the -T and random controls, skipped images, original-pixel coordinates, and a
planted end-to-end check."""
import json, subprocess, sys
import numpy as np, pandas as pd, pytest
from PIL import Image

from diffmine.patches import (pool_map, nms_boxes, default_patch_size, mine_patches, load_patches, crop,
                              pooled_scores, PATCH_COLUMNS)
from diffmine.testing import fake_run
from diffmine.runfolder import RunFolder
from diffmine.runfolder import load_typicality
from diffmine.config import DiffmineError


def _brute_pool(m, k):
    H, W = m.shape
    return np.array([[m[y:y + k, x:x + k].mean() for x in range(W - k + 1)] for y in range(H - k + 1)])


def _overlap(a, b):
    "Boxes (x0, y0, x1, y1) share a pixel or touch."
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def _boxes(df):
    return [tuple(r) for r in df[["x0", "y0", "x1", "y1"]].itertuples(index=False)]


@pytest.mark.parametrize("shape,k", [((7, 11), 1), ((7, 11), 3), ((20, 13), 5), ((16, 16), 16), ((9, 30), 9)])
def test_pool_map_matches_brute_force(shape, k):
    m = np.random.default_rng(k).normal(3.0, 2.0, size=shape).astype(np.float32)
    got = pool_map(m, k)
    assert got.shape == (shape[0] - k + 1, shape[1] - k + 1)
    np.testing.assert_allclose(got, _brute_pool(m.astype(np.float64), k), rtol=0, atol=1e-10)


def test_pool_map_window_larger_than_map_is_empty():
    assert pool_map(np.zeros((4, 10)), 5).size == 0


def test_nms_touching_counts_as_overlap():
    k = 5
    s = np.zeros((12, 30))
    s[2, 3] = 10.                      # best
    s[2, 3 + k] = 9.                   # box exactly adjacent on the right: touches, must be rejected
    s[2 + k, 3] = 8.5                  # adjacent below: rejected too
    s[2, 3 + k + 1] = 8.               # one more pixel away: accepted
    got = nms_boxes(s, k, 2)
    assert [(y, x) for y, x, _ in got] == [(2, 3), (2, 3 + k + 1)]
    s[2, 3 + k + 1] = 0.; s[2 + k + 1, 3] = 7.
    assert [(y, x) for y, x, _ in nms_boxes(s, k, 2)] == [(2, 3), (2 + k + 1, 3)]


def test_nms_zero_overlap_best_first_and_at_most_n():
    for seed in range(10):
        s = np.random.default_rng(seed).normal(size=(40, 57))
        k = 3 + seed
        got = nms_boxes(s, k, 5)
        assert 1 <= len(got) <= 5
        scores = [v for _, _, v in got]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == s.max()
        boxes = [(x, y, x + k, y + k) for y, x, _ in got]
        # touching-inclusive check on exclusive ends: compatible iff |dx| > k or |dy| > k
        for i in range(len(got)):
            for j in range(i):
                (yi, xi, _), (yj, xj, _) = got[i], got[j]
                assert abs(xi - xj) > k or abs(yi - yj) > k
        assert len(boxes) == len(set(boxes))


def test_nms_fewer_boxes_when_few_fit():
    # a 10 x 10 image with k = 4: pooled map 7 x 7; corners must differ by > 4 in x or y, so at most 2 x 2 fit
    s = np.random.default_rng(0).normal(size=(7, 7))
    got = nms_boxes(s, 4, 5)
    assert 1 <= len(got) <= 4
    assert len(nms_boxes(np.ones((1, 1)), 4, 5)) == 1
    assert nms_boxes(np.full((3, 3), np.nan), 2, 5) == []


def test_default_patch_size():
    assert default_patch_size(64, 32) == 8
    assert default_patch_size(64, 512) == 64
    assert default_patch_size(50, 256) == 50
    assert default_patch_size(50, 128) == 25
    assert default_patch_size(64, 3) == 2


def _noise_run(root, n_per_label=(6, 6), size=32, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for lab, n in zip("ab", n_per_label):
        for i in range(n):
            items.append((f"{lab}/{i}.png", lab, rng.normal(size=(size, size)) + (5 if lab == "b" else 0)))
    return fake_run(root/"run", items)


def test_five_per_image_and_top_k_per_label(tmp_path):
    run = _noise_run(tmp_path)
    assert mine_patches(run, top=None, rankings=("T",)).groupby("rel").size().max() <= 5
    full = mine_patches(run, patch=4, top=None, rankings=("T",))
    assert list(full.columns) == PATCH_COLUMNS
    assert (full.groupby("rel").size() == 5).all()          # 4 boxes blank at most 4 x 9 x 9 of 29 x 29 corners
    assert set(full.x1 - full.x0) == {4} and set(full.y1 - full.y0) == {4}
    top = mine_patches(run, patch=4, top=7, rankings=("T",))
    assert list(top.groupby("label").size()) == [7, 7]      # labels independent: 'b' (all higher) does not crowd out 'a'
    for lab, g in top.groupby("label"):
        best = full[full.label == lab].typicality.nlargest(7).to_numpy()
        np.testing.assert_allclose(g.typicality.to_numpy(), best)
        assert list(g["rank"]) == list(range(1, 8))
    # per-image boxes never overlap
    for _, g in full.groupby("rel"):
        b = _boxes(g)
        assert not any(_overlap(b[i], b[j]) for i in range(len(b)) for j in range(i))


def test_minus_t_picks_the_lowest(tmp_path):
    run = _noise_run(tmp_path)
    df = mine_patches(run, top=3)
    assert list(df.ranking.unique()) == ["T", "rand", "-T"]
    for (lab, g) in df[df.ranking == "-T"].groupby("label"):
        assert list(g["rank"]) == [1, 2, 3] and g.typicality.is_monotonic_increasing
    for key, g in mine_patches(run, top=None, rankings=("-T",)).groupby("key"):
        pooled = pool_map(load_typicality(run, key), 8)
        assert g.typicality.min() == pytest.approx(pooled.min())


def test_rand_is_seeded_and_goes_through_nms(tmp_path):
    run = _noise_run(tmp_path)
    a = mine_patches(run, patch=4, top=None, rankings=("rand",), seed=1)
    b = mine_patches(run, patch=4, top=None, rankings=("rand",), seed=1)
    c = mine_patches(run, patch=4, top=None, rankings=("rand",), seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not _boxes(a) == _boxes(c)
    per_image = lambda df: {rel: sorted(_boxes(g)) for rel, g in df.groupby("rel")}
    assert per_image(a) != per_image(c)                  # the per-image permutation itself depends on the seed
    assert (a.groupby("rel").size() == 5).all()
    for _, g in a.groupby("rel"):
        bx = _boxes(g)
        assert not any(_overlap(bx[i], bx[j]) for i in range(len(bx)) for j in range(i))
    t = mine_patches(run, patch=4, top=None, rankings=("T",))
    assert _boxes(a) != _boxes(t)                         # not the typicality order
    # the per-label ranking of rand is random too, and seeded
    k1 = mine_patches(run, top=4, rankings=("rand",), seed=1)
    k2 = mine_patches(run, top=4, rankings=("rand",), seed=1)
    pd.testing.assert_frame_equal(k1, k2)
    assert not k1[k1.label == "a"].typicality.is_monotonic_decreasing or \
        not k1[k1.label == "b"].typicality.is_monotonic_decreasing


def test_image_smaller_than_patch_is_skipped(tmp_path):
    rng = np.random.default_rng(0)
    run = fake_run(tmp_path/"run", [("a/big.png", "a", rng.normal(size=(32, 32))),
                                         ("a/tiny.png", "a", rng.normal(size=(6, 40)))])
    df = mine_patches(run, patch=8)
    assert set(df.rel) == {"a/big.png"}
    skipped = pd.read_csv(run/"patches_skipped.csv")
    assert list(skipped.rel) == ["a/tiny.png"] and "smaller" in skipped.reason[0]
    # a missing map is skipped too, not a crash
    next((run/"maps").glob("*big*.npz")).unlink()
    df = mine_patches(run, patch=4)
    assert set(df.rel) == {"a/tiny.png"}
    assert "unreadable" in pd.read_csv(run/"patches_skipped.csv").reason[0]
    # so is a map with NaN
    bad = np.ones((16, 16)); bad[3, 3] = np.nan
    run2 = fake_run(tmp_path/"run2", [("a/nan.png", "a", bad), ("a/ok.png", "a", np.ones((16, 16)))])
    assert set(mine_patches(run2, patch=4).rel) == {"a/ok.png"}
    assert "NaN" in pd.read_csv(run2/"patches_skipped.csv").reason[0]


def test_boxes_in_original_pixels_when_map_is_smaller(tmp_path):
    m = np.zeros((8, 8), np.float32); m[2, 2] = 1.0           # map cell (2, 2) covers pixels 8..11 of a 32 px image
    run = fake_run(tmp_path/"run", [("a/0.png", "a", m, (32, 32))])
    df = mine_patches(run, rankings=("T",))
    r = df.iloc[0]
    assert r.x1 - r.x0 == 8                                   # generic 64 px scaled to a 32 px image
    assert r.x0 <= 8 and r.x1 >= 12 and r.y0 <= 8 and r.y1 >= 12
    assert 6 <= r.x0 <= 8 and 6 <= r.y0 <= 8
    # a non-square original: x and y scale differently
    run2 = fake_run(tmp_path/"run2", [("a/0.png", "a", m, (32, 64))])
    r2 = mine_patches(run2, rankings=("T",)).iloc[0]
    assert r2.y0 <= 8 and r2.y1 >= 12 and r2.x0 <= 16 and r2.x1 >= 24


def test_planted_end_to_end(tmp_path):
    rng = np.random.default_rng(3)
    items, hot = [], {}
    for i in range(12):
        lab = "abc"[i % 3]
        m = rng.normal(0, 0.3, (48, 40)) - 0.2
        x, y = rng.integers(0, 40 - 8), rng.integers(0, 48 - 8)
        m[y:y + 8, x:x + 8] += 1.5
        items.append((f"{lab}/{i}.png", lab, m)); hot[f"{lab}/{i}.png"] = (x, y, x + 8, y + 8)
    run = fake_run(tmp_path/"run", items)
    df = mine_patches(run, patch=8, top=None)
    for rel, box in hot.items():
        g = df[df.rel == rel]
        t = g[g.ranking == "T"].sort_values("typicality").iloc[-1]
        nt = g[g.ranking == "-T"].sort_values("typicality").iloc[0]
        inter = lambda b: max(0, min(b[2], box[2]) - max(b[0], box[0])) * max(0, min(b[3], box[3]) - max(b[1], box[1]))
        assert inter((t.x0, t.y0, t.x1, t.y1)) > 0
        assert inter((nt.x0, nt.y0, nt.x1, nt.y1)) == 0


def test_default_patch_from_the_run_dataset(tmp_path):
    rng = np.random.default_rng(0)
    run = fake_run(tmp_path/"run", [("1950/0.png", "1950", rng.normal(size=(16, 16)), (256, 300))], dataset="cars")
    assert RunFolder(run).dataset.name == "cars"
    df = mine_patches(run, rankings=("T",))
    assert set(df.x1 - df.x0) == {50}                          # the Cars patch at paper scale
    assert df.x1.max() <= 300 and df.y1.max() <= 256
    assert load_patches(run).label[0] == "1950"                # labels stay strings, even when numeric


def test_load_patches_errors(tmp_path):
    with pytest.raises(DiffmineError, match="no mined patches"):
        load_patches(tmp_path)
    with pytest.raises(ValueError, match="unknown ranking"):
        mine_patches(_noise_run(tmp_path), rankings=("X",))


def test_crop():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    row = pd.Series(dict(x0=10, y0=4, x1=18, y1=12))
    np.testing.assert_array_equal(crop(img, row), np.asarray(img)[4:12, 10:18])
    assert crop(np.zeros((64, 96)), row, size=(32, 48)).shape == (16, 16)


_PEAK = r"""
import sys, numpy as np
from diffmine.patches import mine_patches
from diffmine.testing import fake_run
def peak():    # MiB: this process's high-water mark (ru_maxrss would start at the parent's size, see fork + exec)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
m = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
small = fake_run(sys.argv[1] + "/small", [("a/s.png", "a", m, (512, 512))])
mine_patches(small, patch=64, rankings=("T",))                 # warm up: imports, first allocations
before = peak()
big = fake_run(sys.argv[1] + "/big", [("a/b.jpg", "a", m, (8000, 8000))])
df = mine_patches(big, patch=64)
print(peak() - before, df[df.ranking == "T"][["x0", "y0", "x1", "y1"]].to_numpy().tolist())
"""

@pytest.mark.slow
def test_memory_stays_bounded_on_an_8000_px_image(tmp_path):
    "An 8000 x 8000 image: at full resolution (before the grid) its peak grew by 1.7 GiB; on the grid by ~130 MiB."
    p = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path)], capture_output=True, text=True, check=True)
    grew, boxes = p.stdout.split(" ", 1)
    assert float(grew) < 300, f"mining an 8000 px image raised the peak memory by {float(grew):.0f} MiB"
    boxes = json.loads(boxes)
    assert len(boxes) == 5 and all(x1 - x0 == 64 and y1 - y0 == 64 and 0 <= x0 and x1 <= 8000 and y1 <= 8000
                                   for x0, y0, x1, y1 in boxes)
    for i, a in enumerate(boxes):                                # still zero overlap, in original pixels
        for b in boxes[:i]: assert abs(a[0] - b[0]) > 64 or abs(a[1] - b[1]) > 64


def test_grid_pooling_agrees_with_full_resolution(tmp_path):
    "Above MINE_MAX_SIDE the corners are a grid, the scores the same window means; below it nothing changes."
    rng = np.random.default_rng(4)
    m = rng.normal(size=(16, 12)).astype(np.float32)
    full = pooled_scores(m, (600, 450), 30)
    grid = pooled_scores(m, (600, 450), 30, max_side=100)        # stride 6
    assert grid[0][1] - grid[0][0] == 6 and grid[0][-1] == 570 and grid[1][-1] == 420
    np.testing.assert_allclose(grid[2], full[2][np.ix_(grid[0], grid[1])], rtol=1e-5, atol=1e-6)  # float32 vs float64 upsampling
    up = load_typicality(fake_run(tmp_path/"r", [("a/0.png", "a", m, (600, 450))]), "a/0.png")
    np.testing.assert_array_equal(full[2], pool_map(up, 30))     # the stride-1 path is the old one, bit for bit
    best = nms_boxes(grid[2], 30, 5, grid[0], grid[1])
    assert all(y % 6 == 0 or y == 570 for y, _, _ in best)
