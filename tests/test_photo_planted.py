"""The planted benchmark of real images (`diffmine.synth.make_photo_planted`): real emoji planted per label on
real photographs, with the ground truth of `make_planted`. Determinism, masks that match the pasted objects, shared
objects in every label, each label's own emoji, refused arguments, resume, and the readers downstream."""
import json
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

import diffmine.synth as synth
from diffmine.config import DiffmineError
from diffmine.data import skimage_photos, emoji_images, emoji_names, load_records, detect_layout
from diffmine.synth import make_photo_planted, load_groundtruth, planted_stats, GT_JSON, GT_NPZ, PHOTO_LABELS

SOURCES = Path(__file__).resolve().parent.parent/"runs"/"base-model"/"sources"
N, SIZE = 3, 64


@pytest.fixture(scope="module")
def sources():
    "(wheel, tarball, photos, emoji, names): the real sources, read once."
    wheel, tgz = sorted(SOURCES.glob("scikit_image-*.whl")), SOURCES/"emoji-datasource-google-16.0.0.tgz"
    if not wheel or not tgz.exists():
        pytest.skip(f"the real-image sources are not in {SOURCES}: run `make base-model-sources` (the scikit-image wheel "
                    "and the emoji-datasource-google tarball)")
    return wheel[-1], tgz, skimage_photos(wheel[-1]), emoji_images(tgz), emoji_names(tgz)


@pytest.fixture(scope="module")
def photo_set(sources, tmp_path_factory):
    _, _, photos, emoji, names = sources
    root = make_photo_planted(tmp_path_factory.mktemp("photos")/"data", photos, emoji, n_per_label=N, size=SIZE, names=names)
    return root, load_groundtruth(root)


def _make(root, sources, **kw):
    _, _, photos, emoji, names = sources
    return make_photo_planted(root, photos, emoji, **{"n_per_label": N, "size": SIZE, "names": names, **kw})


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _masks(root):
    with np.load(root/GT_NPZ) as z: return {k: z[k] for k in z.files}


def test_deterministic(sources, photo_set, tmp_path):
    root, _ = photo_set
    wheel, tgz = sources[:2]
    again = make_photo_planted(tmp_path/"again", wheel, tgz, n_per_label=N, size=SIZE)   # from the archives this time
    fa, fb = _files(root), _files(again)
    assert fa == fb and len(fa) == N*len(PHOTO_LABELS)
    assert (root/GT_JSON).read_text() == (again/GT_JSON).read_text()
    ma, mb = _masks(root), _masks(again)
    assert ma.keys() == mb.keys() and all(np.array_equal(ma[k], mb[k]) for k in ma)
    other = _make(tmp_path/"other", sources, seed=1)
    fc = _files(other)
    assert fc.keys() == fa.keys() and all(fa[k] != fc[k] for k in fa)            # another seed: every image differs
    mo = json.loads((other/GT_JSON).read_text())["objects"]
    assert mo != json.loads((root/GT_JSON).read_text())["objects"]               # ... and other emoji


def test_layout_and_readers(photo_set):
    root, gt = photo_set
    assert sorted(p.name for p in root.iterdir()) == sorted([*PHOTO_LABELS, GT_JSON, GT_NPZ])
    assert detect_layout(root) == "folder"
    recs = load_records(root)
    assert [r.rel for r in recs] == gt.rels and len(recs) == N*len(PHOTO_LABELS)
    assert {r.label for r in recs} == set(PHOTO_LABELS)
    assert all(r.label == gt.label_of(r.rel) == r.rel.split("/")[0] for r in recs)
    assert gt.labels == list(PHOTO_LABELS) and gt.params["generator"] == "photos"
    for r in recs:
        im = Image.open(r.path)
        assert (im.size, im.mode) == ((SIZE, SIZE), "RGB")
        assert gt.mask(r.rel).shape == (SIZE, SIZE) and gt.mask(r.rel).dtype == np.uint8
    mosaic, labels = synth.standin_mosaic(root, n=2, up=1)                      # the figures' outlines read it too
    assert labels == list(PHOTO_LABELS) and mosaic.shape == (4*(SIZE + 4), 2*(SIZE + 4), 3)


def _grow(m, r):
    "`m` grown by a disc of radius `r` pixels."
    d, yy, xx = m.copy(), *np.mgrid[-int(r):int(r) + 1, -int(r):int(r) + 1]
    for dy, dx in zip(yy.ravel(), xx.ravel()):
        if dy*dy + dx*dx <= r*r: d |= np.roll(np.roll(m, dy, 0), dx, 1)
    return d


def test_masks_match_pasted_objects(sources, photo_set):
    "Re-rendering each image with its own random stream gives the written file, its mask, and its bare background."
    root, gt = photo_set
    photos, emoji = sources[2], sources[3]
    kinds, objects = {int(k): v for k, v in json.loads((root/GT_JSON).read_text())["kinds"].items()}, dict(emoji)
    for j, label in enumerate(PHOTO_LABELS):
        for i in range(N):
            rel = f"{label}/{label}_{i:04d}.png"
            img, mask, bg = synth._photo_scene(photos, objects, kinds, label, SIZE, np.random.default_rng([0, 17, j, i]))
            assert np.array_equal(np.asarray(Image.open(root/rel)), img) and np.array_equal(gt.mask(rel), mask)
            inside, diff = mask > 0, np.abs(img.astype(int) - bg).max(-1)
            assert (diff > 0)[inside].mean() > 0.9                                # the mask is where objects were pasted
            # ... and nothing was pasted elsewhere: resampling fringes (alpha < 0.5) reach 4 px, visibly 3 px
            assert not (diff > 0)[~_grow(inside, 4.5)].any() and not (diff > 8)[~_grow(inside, 3)].any()
            assert set(np.unique(mask)) - {0} <= set(gt.kind_ids(label) + gt.kind_ids(None))


def test_occlusion():
    "A later paste takes the pixels it covers out of the earlier masks."
    sq = np.zeros((6, 6, 4), np.float32); sq[..., :3], sq[..., 3] = 0.4, 1.0
    half = sq.copy(); half[..., 3] = 0.3; half[..., :3] = 0.3*0.9                  # translucent: covers nothing
    img, m = synth._composite(np.zeros((10, 10, 3), np.float32), [(1, sq, 0, 0), (2, sq, 3, 3), (3, half, 0, 0)])
    assert (m == 1).sum() == 36 - 9 and (m == 2).sum() == 36 and (m == 3).sum() == 0
    assert np.all(m[3:6, 3:6] == 2)


def test_shared_in_every_label_with_one_law(photo_set):
    root, gt = photo_set
    shared = gt.kind_ids(None)
    assert len(shared) == 3
    for rel in gt.rels:
        own, sh = gt.label_mask(rel, gt.label_of(rel)), gt.shared_mask(rel)
        assert own.any() and sh.any() and not (own & sh).any()
        present = set(np.unique(gt.mask(rel))) - {0}
        assert 1 <= len(present & set(shared)) <= 2 and 1 <= len(present - set(shared)) <= 2
    st = planted_stats(gt)
    assert st[st.kind_label == "(shared)"].groupby("label").images.sum().min() > 0   # every label shows shared objects


def test_label_objects_distinct(sources, photo_set):
    root, gt = photo_set
    meta = json.loads((root/GT_JSON).read_text())
    codes = [k["emoji"] for k in meta["kinds"].values()]
    assert len(codes) == 2*len(PHOTO_LABELS) + 3 and len(set(codes)) == len(codes)
    assert all("-" not in c for c in codes)                                       # base emoji, no variants
    for label in PHOTO_LABELS:
        assert len(gt.kind_ids(label)) == 2
        assert meta["objects"][label] == [meta["kinds"][str(k)]["name"] for k in gt.kind_ids(label)]
    assert set(meta["objects"]) == {*PHOTO_LABELS, "(shared)"}
    names = sources[4]
    assert all(k["name"] == names[k["emoji"]] for k in meta["kinds"].values())  # named after emoji.json
    st = planted_stats(gt)
    assert st[(st.kind_label != st.label) & (st.kind_label != "(shared)")].images.max() == 0   # no other label's emoji


def test_label_and_shared_objects_comparable(sources, tmp_path):
    "Not an easy task: a label's objects cover about as much of an image as the shared ones."
    gt = load_groundtruth(_make(tmp_path/"d", sources, n_per_label=12))
    own = np.mean([gt.label_mask(r, gt.label_of(r)).mean() for r in gt.rels])
    shared = np.mean([gt.shared_mask(r).mean() for r in gt.rels])
    assert 0.03 < own < 0.12 and 0.03 < shared < 0.12 and 0.6 < own/shared < 1.6, (own, shared)


def test_refuses_bad_args(sources, tmp_path):
    _, _, photos, emoji, _ = sources
    out = tmp_path/"new"
    bad = [(dict(seed=-1), "seed"), (dict(size=16), "size"), (dict(size=4096), "size"), (dict(n_per_label=0), "n_per_label"),
           (dict(n_per_label=2.5), "n_per_label"), (dict(n_shared=1), "n_shared"), (dict(labels=["a", "a"]), "repeated labels"),
           (dict(labels=["a/b"]), "cannot be a folder name"), (dict(labels=[]), "0 labels asked"),
           (dict(labels=[f"l{i}" for i in range(101)]), "101 labels asked")]
    for kw, msg in bad:
        with pytest.raises(DiffmineError, match=msg): make_photo_planted(out, photos, emoji, **kw)
    with pytest.raises(DiffmineError, match="photos"): make_photo_planted(out, [np.zeros((4, 4))], emoji)
    with pytest.raises(DiffmineError, match="emoji"): make_photo_planted(out, photos, [Image.new("RGBA", (4, 4))])
    with pytest.raises(DiffmineError, match="usable emoji"): make_photo_planted(out, photos, emoji[:40])
    with pytest.raises(DiffmineError, match="not found"): make_photo_planted(out, tmp_path/"gone.whl", emoji)
    assert not out.exists()                                                       # nothing written
    (tmp_path/"file").write_text("x")
    with pytest.raises(DiffmineError, match="is a file"): make_photo_planted(tmp_path/"file", photos, emoji)
    (tmp_path/"busy").mkdir(); (tmp_path/"busy"/"mine.txt").write_text("x")
    with pytest.raises(DiffmineError, match="is not empty"): make_photo_planted(tmp_path/"busy", photos, emoji)


def test_resume_and_overwrite(sources, tmp_path):
    root = _make(tmp_path/"d", sources)
    rel = f"{PHOTO_LABELS[1]}/{PHOTO_LABELS[1]}_0001.png"
    b, t = (root/rel).read_bytes(), (root/GT_JSON).stat().st_mtime_ns
    (root/rel).unlink()
    _make(root, sources)                                                          # completes the folder
    assert (root/rel).read_bytes() == b and (root/GT_JSON).stat().st_mtime_ns == t
    with pytest.raises(DiffmineError, match="made with other settings"): _make(root, sources, seed=2)
    _make(root, sources, n_per_label=1, seed=2, overwrite=True)
    assert len(_files(root)) == len(PHOTO_LABELS) and not (root/rel).exists()       # the old images are gone
    assert len(load_groundtruth(root)) == len(PHOTO_LABELS)


def test_cli(sources, tmp_path, capsys):
    from diffmine.cli import main
    wheel, tgz = sources[:2]
    main(["synth", "photos", str(tmp_path/"d"), "--photos", str(wheel), "--emoji", str(tgz), "--n-per-label", "1",
          "--size", "48", "--seed", "3"])
    assert "planted photos dataset" in capsys.readouterr().out
    gt = load_groundtruth(tmp_path/"d")
    assert gt.params["size"] == 48 and gt.params["seed"] == 3 and len(gt) == len(PHOTO_LABELS)
    for args, msg in [(["synth", "photos", str(tmp_path/"e"), "--photos", str(tmp_path/"gone.whl")], "--photos"),
                      (["synth", "planted", str(tmp_path/"f"), "--emoji", str(tgz)], "only `diffmine synth photos`")]:
        with pytest.raises(SystemExit): main(args)
        assert msg in capsys.readouterr().err
