"Planted stand-ins of the paper's five datasets (diffmine.synth): real layouts and label names, masks, boxes, determinism."
import csv, json
import numpy as np
import pytest
from PIL import Image

from diffmine.config import DiffmineError
from diffmine.data import detect_layout, load_records, label_names
from diffmine.synth import (STANDINS, STANDIN_LAYOUTS, make_standin, make_xray, load_groundtruth, planted_stats,
                            CARDB_DECADES, FTT_DECADES, G3_COUNTRIES, XRAY_LABELS, XRAY_FINDINGS, GT_JSON, GT_NPZ)

N = {"cars": 6, "faces": 6, "geo": 5, "places": 6, "xray": 12}
LABELS = {"cars": list(CARDB_DECADES), "faces": list(FTT_DECADES), "geo": sorted(G3_COUNTRIES),
          "places": ["airfield", "basketball court indoor", "beach", "church outdoor", "forest broadleaf", "kitchen",
                     "lighthouse", "ski slope"], "xray": sorted(XRAY_LABELS)}


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    base = tmp_path_factory.mktemp("standins")
    return {n: make_standin(n, base/n, n_per_label=N[n], seed=0) for n in STANDINS}


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(STANDINS))
def test_layout_and_labels(standins, name):
    root = standins[name]
    assert detect_layout(root) == STANDIN_LAYOUTS[name]
    recs, gt = load_records(root), load_groundtruth(root)
    assert label_names(recs) == LABELS[name]
    assert sorted(r.rel for r in recs) == gt.rels                   # every image with ground truth is read, no other
    assert all(gt.label_of(r.rel) == r.label for r in recs)
    if name != "xray":
        counts = {l: sum(r.label == l for r in recs) for l in LABELS[name]}
        assert (min(counts.values()) == max(counts.values()) == N[name]) if name != "geo" else min(counts.values()) >= N[name]


def _ring(m, r=2):
    d = m.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1): d |= np.roll(np.roll(m, dy, 0), dx, 1)
    return d & ~m


@pytest.mark.parametrize("name", list(STANDINS))
def test_masks_align_with_pixels(standins, name):
    "Planted masks are non-empty for every labelled image, and their pixels differ from the background around them."
    root = standins[name]
    gt = load_groundtruth(root)
    aligned, shifted = [], []
    for r in load_records(root):
        m = gt.label_mask(r.rel, r.label)
        if r.label == "No Finding": assert not m.any(); continue
        assert m.any(), r.rel
        img = np.asarray(Image.open(r.path).convert("RGB"), np.float32)
        assert img.shape[:2] == m.shape == (32, 32)
        ring = _ring(m) & (gt.mask(r.rel) == 0)
        if m.sum() >= 4 and ring.sum() >= 4:
            aligned.append(np.abs(img[m].mean(0) - img[ring].mean(0)).sum())
            ms = np.roll(m, 7, 1); rs = _ring(ms) & (gt.mask(r.rel) == 0) & ~ms
            if rs.sum() >= 4 and (ms & (gt.mask(r.rel) == 0)).sum() >= 4:
                shifted.append(np.abs(img[ms & (gt.mask(r.rel) == 0)].mean(0) - img[rs].mean(0)).sum())
    assert len(aligned) >= 10
    assert np.median(aligned) > 25 and np.median(aligned) > 2.5*np.median(shifted), (np.median(aligned), np.median(shifted))


def test_shared_elements_in_every_label(tmp_path):
    "Shared kinds appear in every label at similar rates; planted kinds only in their own label."
    for name, n in [("places", 30), ("xray", 40)]:
        gt = load_groundtruth(make_standin(name, tmp_path/name, n_per_label=n, seed=1))
        st = planted_stats(gt)
        st = st[st.label.isin(gt.params["labels"])]
        sh = st[st.kind_label == "(shared)"].pivot(index="kind", columns="label", values="images")
        assert sh.shape[1] == len(gt.params["labels"]) and sh.values.min() > 0.2, sh
        assert (sh.max(axis=1) - sh.min(axis=1)).max() < 0.45, sh
        assert st[(st.kind_label != st.label) & (st.kind_label != "(shared)")].images.max() == 0.0
        own = st[st.kind_label == st.label]
        assert own.groupby("label").images.max().min() == 1.0       # each label's primary kind: always


def test_deterministic(tmp_path):
    for name in ("cars", "geo", "xray"):
        a, b, c = (make_standin(name, tmp_path/f"{name}{k}", n_per_label=3, seed=s) for k, s in [("a", 2), ("b", 2), ("c", 3)])
        fa, fb, fc = _files(a), _files(b), _files(c)
        assert fa == fb, name
        imgs = [k for k in fa if k.endswith((".png", ".jpg"))]
        assert imgs and sum(fa[k] != fc.get(k) for k in imgs) >= 0.9*len(imgs), name


def test_xray_boxes(standins):
    "BBox_List_2017.csv is in the 1024-px frame, says Infiltrate, and holds each planted finding scaled to 32 px."
    root = standins["xray"]
    gt = load_groundtruth(root)
    with open(root/"BBox_List_2017.csv") as f: rows = list(csv.reader(f))
    assert rows[0][:6] == ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]
    assert {r[1] for r in rows[1:]} == {v[0] for v in XRAY_FINDINGS.values()} and "Infiltrate" in {r[1] for r in rows[1:]}
    xywh = np.array([[float(v) for v in r[2:6]] for r in rows[1:]])
    assert xywh.min() >= 0 and (xywh[:, 0] + xywh[:, 2]).max() <= 1024 + 1e-3 and xywh[:, 2:].max() > 100   # 1024-px frame
    n = 0
    for r in load_records(root):
        for b in r.meta.get("boxes", []):
            assert b["label"] in r.labels
            s = 32/1024
            m = np.isin(gt.mask(r.rel), gt.kind_ids(b["label"]))
            inside = np.zeros_like(m)
            inside[int(np.floor(b["y"]*s)):int(np.ceil((b["y"] + b["h"])*s)), int(np.floor(b["x"]*s)):int(np.ceil((b["x"] + b["w"])*s))] = True
            if len(r.meta["boxes"]) == 1: assert m.any() and not (m & ~inside).any(), (r.rel, b)
            n += 1
    assert n == len(rows) - 1
    for r in load_records(root):
        assert Image.open(r.path).mode == "L" and Image.open(r.path).size == (32, 32)
        assert ("boxes" in r.meta) == (r.label != "No Finding")
    entry = (root/"Data_Entry_2017.csv").read_text().splitlines()
    assert entry[0].startswith("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position")
    test, train = (set((root/f).read_text().split()) for f in ("test_list.txt", "train_val_list.txt"))
    assert test and train and not test & train and len(test | train) == len(entry) - 1
    assert {r.meta["split"] for r in load_records(root, split="test")} == {"test"}


def test_xray_frequencies(tmp_path):
    "No Finding is the most frequent label, Infiltration the most frequent finding (as in the real files)."
    recs = load_records(make_xray(tmp_path/"x", n_per_label=20))
    count = lambda l: sum(l in r.labels for r in recs)
    assert count("No Finding") > count("Infiltration") > count("Pneumonia") >= 5
    assert any(len(r.labels) > 1 for r in recs)


def test_geo_exclude(standins):
    root = standins["geo"]
    ex = json.loads((root/"exclude.json").read_text())
    assert ex and all((root/"images"/e).is_file() for e in ex)
    rels = {r.rel for r in load_records(root)}
    assert not {f"images/{e}" for e in ex} & rels
    assert not {f"images/{e}" for e in ex} & set(load_groundtruth(root).rels)
    head = (root/"metadata.csv").read_text().splitlines()[0]
    assert head == "id,country,region,sub-region,city,latitude,longitude"
    assert {r.path.name for r in load_records(root)} <= {"45.jpg", "135.jpg", "225.jpg", "315.jpg"}


def test_resume_and_overwrite(standins, tmp_path):
    root = make_standin("cars", tmp_path/"cars", n_per_label=3)
    files = _files(root)
    (root/"train"/"000004.png").unlink(); (root/GT_NPZ).unlink()
    make_standin("cars", root, n_per_label=3)
    assert _files(root) == files                                    # completed with identical files
    t = (root/GT_JSON).stat().st_mtime_ns
    make_standin("cars", root, n_per_label=3); assert (root/GT_JSON).stat().st_mtime_ns == t
    with pytest.raises(DiffmineError, match=r"other settings \(n_per_label: 3 -> 4\)"): make_standin("cars", root, n_per_label=4)
    make_standin("cars", root, n_per_label=2, overwrite=True)
    assert len(load_records(root)) == 16 and len(list((root/"train").iterdir())) == 16
    with pytest.raises(DiffmineError, match="no stand-in named"): make_standin("imagenet", tmp_path/"x")
