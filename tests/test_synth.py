"Planted data (diffmine.synth): determinism, layout, masks that match the pixels, label/shared statistics, resume."
import json
import numpy as np
import pytest
from PIL import Image

import diffmine.synth as synth
from diffmine.config import DiffmineError
from diffmine.synth import make_planted, load_groundtruth, planted_stats, GT_JSON, GT_NPZ, PLANTED_LABELS


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    "The default benchmark, 4 labels x 100 images at 32 px (what `make demo` writes)."
    root = make_planted(tmp_path_factory.mktemp("planted")/"data", n_per_label=100, seed=0)
    return root, load_groundtruth(root)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _masks(root):
    with np.load(root/GT_NPZ) as z: return {k: z[k] for k in z.files}


def test_deterministic(tmp_path):
    a, b, c = (make_planted(tmp_path/n, n_per_label=5, seed=s) for n, s in [("a", 3), ("b", 3), ("c", 4)])
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb and len(fa) == 20
    assert (a/GT_JSON).read_text().replace(str(a), "") == (b/GT_JSON).read_text().replace(str(b), "")
    ma, mb = _masks(a), _masks(b)
    assert ma.keys() == mb.keys() and all(np.array_equal(ma[k], mb[k]) for k in ma)
    assert fa.keys() == fc.keys() and all(fa[k] != fc[k] for k in fa)       # another seed: every image differs


def test_layout(planted):
    root, gt = planted
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(PLANTED_LABELS)
    for label in PLANTED_LABELS:
        files = sorted((root/label).glob("*.png"))
        assert [f.name for f in files] == [f"{label}_{i:04d}.png" for i in range(100)]
    for rel in gt.rels[::37]:
        im = Image.open(root/rel)
        assert (im.size, im.mode) == ((32, 32), "RGB")
        assert gt.mask(rel).shape == (32, 32) and gt.mask(rel).dtype == np.uint8
    assert len(gt.rels) == 400 and set(gt.rels) == {p.relative_to(root).as_posix() for p in root.rglob("*.png")}


def test_sidecars_are_files_not_label_folders(planted):
    root, gt = planted
    for name in (GT_JSON, GT_NPZ): assert (root/name).is_file()
    assert {p.name for p in root.iterdir() if not p.is_dir()} == {GT_JSON, GT_NPZ}
    meta = json.loads((root/GT_JSON).read_text())
    assert meta["version"] == 1 and meta["params"]["seed"] == 0 and meta["params"]["labels"] == list(PLANTED_LABELS)
    assert meta["styles"] == {"crosses": "warm", "stripes": "cool"}
    assert all(k["label"] in PLANTED_LABELS or k["label"] is None for k in meta["kinds"].values())


def _ring(m, r=2):
    "Pixels within `r` of the mask `m`, outside it."
    d = m.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1): d |= np.roll(np.roll(m, dy, 0), dx, 1)
    return d & ~m


def _contrast(img, m, others):
    "Mean colour distance between the pixels of `m` and the background pixels around them."
    ring = _ring(m) & ~others
    if m.sum() < 4 or ring.sum() < 4: return None
    return float(np.abs(img[m].mean(0) - img[ring].mean(0)).sum())


def test_masks_align_with_pixels(planted):
    root, gt = planted
    aligned, shifted = [], []
    for rel in gt.rels[::4]:
        img = np.asarray(Image.open(root/rel), dtype=np.float32)
        m, label = gt.mask(rel), gt.label_of(rel)
        for sel in (gt.label_mask(rel, label), gt.shared_mask(rel)):
            a = _contrast(img, sel, (m > 0) & ~sel)
            s = _contrast(img, np.roll(sel, 6, 1), m > 0)       # the same mask, 6 px off
            if a is not None and s is not None: aligned.append(a); shifted.append(s)
    assert len(aligned) > 100
    assert np.mean(aligned) > 60 and np.mean(aligned) > 2*np.mean(shifted), (np.mean(aligned), np.mean(shifted))


def test_masks_match_pixels_exactly(planted):
    "Planted solid elements are saturated, shared ones grey and dark or light, the background muted: per pixel."
    root, gt = planted
    solid = [k for k, v in gt.kinds.items() if v["label"] and v["texture"] == "solid"]
    def fractions(shift):
        sat_el, sat_bg, val_sh = [], [], []
        for rel in gt.rels:
            hsv = np.asarray(Image.open(root/rel).convert("HSV"), dtype=np.float32)/255
            m = np.roll(gt.mask(rel), shift, 1)
            sat_el.append(hsv[..., 1][np.isin(m, solid)]); sat_bg.append(hsv[..., 1][m == 0])
            val_sh.append(hsv[..., 2][np.isin(m, gt.kind_ids(None))])
        sat_el, sat_bg, val_sh = map(np.concatenate, (sat_el, sat_bg, val_sh))
        return (sat_el > 0.4).mean(), (sat_bg > 0.4).mean(), (abs(val_sh - 0.55) > 0.2).mean()
    el, bg, sh = fractions(0)
    assert el > 0.97 and bg < 0.08 and sh > 0.9, (el, bg, sh)
    el1, bg1, sh1 = fractions(1)                                   # one pixel off already shows
    assert el1 < el - 0.05 and bg1 > bg and sh1 < sh - 0.05, (el1, bg1, sh1)


def test_every_image_has_its_label_elements_only(planted):
    root, gt = planted
    for rel in gt.rels:
        label = gt.label_of(rel)
        assert gt.label_mask(rel, label).sum() >= 10, rel              # at least one planted element, visible
        for other in PLANTED_LABELS:
            if other != label: assert not gt.label_mask(rel, other).any(), (rel, other)


def test_label_and_shared_masks_disjoint(planted):
    root, gt = planted
    for rel in gt.rels:
        lm, sm = gt.label_mask(rel, gt.label_of(rel)), gt.shared_mask(rel)
        assert not (lm & sm).any()
        assert ((gt.mask(rel) > 0) == (lm | sm)).all()                 # every element pixel is one or the other
    assert set(gt.kind_ids(None)) == {k for k, v in gt.kinds.items() if v["label"] is None}


def test_shared_elements_same_rates_in_every_label(planted):
    root, gt = planted
    st = planted_stats(gt)
    shared = st[st.kind_label == "(shared)"].pivot(index="kind", columns="label", values="images")
    assert shared.shape == (2, 4)
    assert (shared.max(axis=1) - shared.min(axis=1)).max() < 0.2, shared
    assert ((shared - 0.6).abs() < 0.15).all().all(), shared
    px = st[st.kind_label == "(shared)"].pivot(index="kind", columns="label", values="pixels")
    assert (px.max(axis=1)/px.min(axis=1)).max() < 1.5, px
    own = st[st.kind_label == st.label].pivot(index="kind", columns="label", values="images")
    assert sorted(own.max(axis=1).round(2).tolist()).count(1.0) == 4   # one primary kind per label, always present


def test_rerun_is_noop_when_complete(planted, tmp_path):
    root = make_planted(tmp_path/"d", n_per_label=6, seed=1)
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    make_planted(tmp_path/"d", n_per_label=6, seed=1)
    assert stamp == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_rerun_completes_a_damaged_folder(tmp_path):
    root = make_planted(tmp_path/"d", n_per_label=6, seed=1)
    before, masks = _files(root), _masks(root)
    for rel in ["circles/circles_0002.png", "stripes/stripes_0005.png"]: (root/rel).unlink()
    (root/GT_NPZ).unlink()
    make_planted(tmp_path/"d", n_per_label=6, seed=1)
    assert _files(root) == before
    after = _masks(root)
    assert after.keys() == masks.keys() and all(np.array_equal(after[k], masks[k]) for k in masks)


def test_interrupted_generation_resumes(tmp_path, monkeypatch):
    clean = make_planted(tmp_path/"clean", n_per_label=5, seed=2)
    calls, save = [0], synth._save_png
    def flaky(path, img):
        calls[0] += 1
        if calls[0] > 7: raise KeyboardInterrupt
        save(path, img)
    monkeypatch.setattr(synth, "_save_png", flaky)
    with pytest.raises(KeyboardInterrupt): make_planted(tmp_path/"d", n_per_label=5, seed=2)
    assert len(list((tmp_path/"d").rglob("*.png"))) == 7 and not (tmp_path/"d"/GT_NPZ).exists()
    assert not [p for p in (tmp_path/"d").rglob("*") if ".tmp" in p.name]     # no half-written files
    with pytest.raises(DiffmineError, match="generation did not finish"): load_groundtruth(tmp_path/"d")
    monkeypatch.setattr(synth, "_save_png", save)
    make_planted(tmp_path/"d", n_per_label=5, seed=2)
    assert _files(tmp_path/"d") == _files(clean)


def test_other_params_need_overwrite(tmp_path):
    root = make_planted(tmp_path/"d", n_per_label=6, seed=1)
    with pytest.raises(DiffmineError, match="made with other settings"): make_planted(root, n_per_label=3, seed=1)
    make_planted(root, n_per_label=3, seed=1, overwrite=True)
    assert len(list(root.rglob("*.png"))) == 12 and len(load_groundtruth(root)) == 12
    (tmp_path/"other").mkdir(); (tmp_path/"other"/"notes.txt").write_text("mine")
    with pytest.raises(DiffmineError, match="holds no planted dataset"): make_planted(tmp_path/"other")
    with pytest.raises(DiffmineError, match="not found"): load_groundtruth(tmp_path/"other")
    with pytest.raises(DiffmineError, match="cannot be a folder name"): make_planted(tmp_path/"x", labels=["a/b"])


def test_custom_labels_and_size(tmp_path):
    root = make_planted(tmp_path/"d", labels=["alpha", "beta", "gamma"], n_per_label=20, size=64, seed=0)
    gt = load_groundtruth(root)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["alpha", "beta", "gamma"]
    assert Image.open(root/gt.rels[0]).size == (64, 64) and gt.mask(gt.rels[0]).shape == (64, 64)
    assert [gt.kinds[k]["name"] for k in gt.kind_ids("beta")] == ["plus", "xmark"]
    # element sizes scale with the image: the same share of pixels as at 32 px
    small = load_groundtruth(make_planted(tmp_path/"s", labels=["alpha", "beta", "gamma"], n_per_label=20, seed=0))
    frac = lambda g: np.mean([(g.mask(r) > 0).mean() for r in g.rels])
    assert abs(frac(gt) - frac(small)) < 0.02, (frac(gt), frac(small))
