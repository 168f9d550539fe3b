"""Tests of `diffmine.data`: every layout on small generated folders, ChestX-ray14 on the real NIH label files, and
the bad inputs a real collection holds (broken, odd-mode, rotated, huge images; bad metadata)."""
import gzip, json, shutil, warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, JpegImagePlugin

from diffmine.config import DiffmineError
from diffmine.data import (BadImage, BadInputs, EMPTY_LABEL, LAYOUTS, Record, detect_layout, is_image_file, label_names,
                           load_cardb, load_chestxray, load_csv, load_folder, load_ftt, load_g3, load_image,
                           load_places, load_records)

NIH = Path(__file__).parent/"assets"/"nih"   # the real NIH label files, copied from the torchxrayvision 1.5.7 wheel


def make(root, *rels, size=(8, 8), color=(120, 60, 30)):
    "Write tiny real images (any other extension: a small text file) at root/rel; return root."
    root = Path(root)
    for rel in rels:
        p = root/rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if is_image_file(rel): Image.new("RGB", size, color).save(p)
        else: p.write_text("not an image")
    return root


def rels(records): return [r.rel for r in records]


# ---------------------------------------------------------------------------------------------------------------
# Record and BadInputs

def test_record_label_and_coercion():
    r = Record("/d/images/x.png", ["Mass", "Nodule"], "images/x.png")
    assert r.label == "Mass, Nodule"
    assert r.labels == ("Mass", "Nodule") and isinstance(r.path, Path)
    assert Record("/d/1950/a.jpg", "1950", "1950/a.jpg").labels == ("1950",)
    assert Record("/a", ("x",), "a").meta == {} and Record("/a", ("x",), "a").meta is not Record("/b", ("x",), "b").meta


def test_bad_inputs_save(tmp_path):
    b = BadInputs()
    out = b.save(tmp_path/"run")
    assert out == tmp_path/"run"/"bad_inputs.csv" and out.read_text() == "path,reason\n"   # header only when empty
    b.add(tmp_path/'a, "b" é.jpg', "empty file (0 bytes)")
    b.add("c.jpg", "file not found")
    b.add("d.jpg", "file not found")
    assert len(b) == 3 and b.counts["file not found"] == 2
    df = pd.read_csv(b.save(tmp_path/"run"), keep_default_na=False)
    assert list(df.columns) == ["path", "reason"]
    assert df.values.tolist() == [[str(tmp_path/'a, "b" é.jpg'), "empty file (0 bytes)"],
                                  ["c.jpg", "file not found"], ["d.jpg", "file not found"]]
    assert [p.name for p in (tmp_path/"run").iterdir()] == ["bad_inputs.csv"]   # no temporary file left


def test_an_empty_report_passed_in_is_filled(tmp_path):
    root = make(tmp_path, "cats/1.png", "cats/notes.txt")
    report = BadInputs()                      # empty, hence falsy: it must still be the one written to
    load_records(root, report=report)
    assert [Path(p).name for p, _ in report.rows] == ["notes.txt"]


# ---------------------------------------------------------------------------------------------------------------
# folder

def test_folder_layout(tmp_path):
    root = make(tmp_path/"ds", "dogs/b.png", "dogs/a.jpg", "dogs/deeper/c.JPEG", "cats/1.webp", "cats/notes.txt",
                "stray.png", ".git/x.png", "_cache/y.png", "cats/.thumb.png", "cats/_old/z.png",
                "groundtruth.json", "groundtruth.npz", "README.md")
    (root/"empty_label").mkdir()
    report = BadInputs()
    recs = load_folder(root, report=report)
    assert rels(recs) == ["cats/1.webp", "dogs/a.jpg", "dogs/b.png", "dogs/deeper/c.JPEG"]
    assert [r.label for r in recs] == ["cats", "dogs", "dogs", "dogs"]
    assert recs[0].path == root/"cats"/"1.webp" and recs[0].path.is_absolute()
    assert sorted(Path(p).name for p, _ in report.rows) == ["empty_label", "notes.txt", "stray.png"]
    why = dict((Path(p).name, r) for p, r in report.rows)
    assert "not an image file" in why["notes.txt"] and why["empty_label"] == EMPTY_LABEL
    assert label_names(recs) == ["cats", "dogs"]                 # the empty label folder is absent, and reported
    assert detect_layout(root) == "folder"
    assert load_records(root) == recs
    with pytest.raises(DiffmineError, match="has no 'test' split"): load_folder(root, split="test")


def test_paths_with_spaces_and_non_ascii(tmp_path):
    root = make(tmp_path/"my data é", "São Paulo/foto 1.jpg", "Zürich/ü ß.png", "日本/写真.png")
    recs = load_records(root)
    assert rels(recs) == ["São Paulo/foto 1.jpg", "Zürich/ü ß.png", "日本/写真.png"]
    assert label_names(recs) == ["São Paulo", "Zürich", "日本"]
    assert all(load_image(r.path).size == (8, 8) for r in recs)
    (root/"labels.csv").write_text("path,label\nSão Paulo/foto 1.jpg,city|Brazil\n日本/写真.png,Japan\n", encoding="utf-8")
    recs = load_csv(root)
    assert [(r.rel, r.labels) for r in recs] == [("São Paulo/foto 1.jpg", ("city", "Brazil")), ("日本/写真.png", ("Japan",))]


# ---------------------------------------------------------------------------------------------------------------
# csv

def test_csv_layout(tmp_path):
    root = make(tmp_path, "img/a.png", "img/b.png", "img/c.png", "img/d.png", "img/x.txt", "_hidden/h.png")
    (root/"labels.csv").write_text(
        "path,label,split,source\n"
        "img/d.png,Mass|Nodule,test,scan\n"
        "img/a.png,NA,train,\n"              # "NA" (Namibia) must stay a string
        "img/b.png, dog ,train,web\n"
        "img/a.png,cat,train,\n"             # duplicate id: the first row wins
        "img/gone.png,cat,train,\n"          # listed but missing on disk
        "img/x.txt,cat,train,\n"             # not an image
        "_hidden/h.png,cat,train,\n"         # hidden path
        "./img/c.png,cat,train,\n"           # './' is the same file as 'img/c.png'
        "img/c.png,dog,train,\n"             # ... so this is a duplicate
        "../outside.png,cat,train,\n")       # outside the dataset
    report = BadInputs()
    recs = load_csv(root, report=report)
    assert [(r.rel, r.labels) for r in recs] == [("img/a.png", ("NA",)), ("img/b.png", ("dog",)),
                                                 ("img/c.png", ("cat",)), ("img/d.png", ("Mass", "Nodule"))]
    assert recs[3].meta == {"split": "test", "source": "scan"} and recs[0].meta == {"split": "train"}
    reasons = [r for _, r in report.rows]
    assert reasons.count("duplicate image id (listed again in labels.csv; the first row is kept)") == 2
    assert "listed in labels.csv but missing on disk" in reasons
    assert any(r.startswith("not an image file") for r in reasons)
    assert any(r.startswith("hidden path") for r in reasons)
    assert any("outside the dataset folder" in r for r in reasons)
    assert len(report) == 6
    assert rels(load_csv(root, split="test")) == ["img/d.png"]
    assert rels(load_csv(root, split="train")) == ["img/a.png", "img/b.png", "img/c.png"]
    assert detect_layout(root) == "csv"
    assert label_names(recs) == ["Mass", "NA", "Nodule", "cat", "dog"]


def test_csv_picks_labels_csv_then_a_valid_table(tmp_path):
    root = make(tmp_path, "img/a.png", "img/b.png")
    (root/"a_stats.csv").write_text("path,label\nimg/b.png,wrong\n")
    (root/"labels.csv").write_text("path,label\nimg/a.png,right\n")
    assert [r.label for r in load_csv(root)] == ["right"]
    (root/"labels.csv").unlink()
    (root/"0_notes.csv").write_text("x,y\n1,2\n")          # no path,label columns: not the table
    assert [(r.rel, r.label) for r in load_csv(root)] == [("img/b.png", "wrong")]
    absolute = root/"list.csv"
    (root/"a_stats.csv").unlink()
    absolute.write_text(f"path,label\n{root/'img'/'a.png'},abs\n")   # an absolute path inside the root is accepted
    assert [(r.rel, r.label) for r in load_csv(root)] == [("img/a.png", "abs")]


def test_csv_missing_column_names_file_and_column(tmp_path):
    root = make(tmp_path, "img/a.png")
    (root/"labels.csv").write_text("file,label\nimg/a.png,cat\n")
    with pytest.raises(DiffmineError) as e: load_csv(root)
    assert "labels.csv" in str(e.value) and "'path'" in str(e.value)
    (root/"labels.csv").write_text("path,class\nimg/a.png,cat\n")
    with pytest.raises(DiffmineError) as e: load_csv(root)
    assert str(root/"labels.csv") in str(e.value) and "'label'" in str(e.value)
    (root/"labels.csv").write_text("path,label\nimg/a.png,cat\n")
    with pytest.raises(DiffmineError, match="no 'split' column"): load_csv(root, split="test")


# ---------------------------------------------------------------------------------------------------------------
# CarDB

def test_cardb_decades(tmp_path):
    root = make(tmp_path, "train/a.jpg", "train/b.jpg", "train/c.jpg", "train/d.jpg", "train/unlisted.jpg",
                "test/t1.jpg")
    (root/"train.json").write_text('{"a.jpg": {"year": 1957}, "b.jpg": {"year": "1960", "make": "Fiat"}, '
                                   '"c.jpg": {"year": 1999.0}, "d.jpg": {"year": null}, "gone.jpg": {"year": 1931}, '
                                   '"a.jpg": {"year": 1920}}')
    (root/"test.json").write_text(json.dumps({"t1.jpg": {"year": 1923}}))
    report = BadInputs()
    recs = load_cardb(root, report=report)
    assert [(r.rel, r.label, r.meta["year"]) for r in recs] == [
        ("train/a.jpg", "1950", 1957), ("train/b.jpg", "1960", 1960), ("train/c.jpg", "1990", 1999)]
    assert recs[1].meta == {"year": 1960, "make": "Fiat", "split": "train"}
    why = {Path(p).name: r for p, r in report.rows}
    assert why["a.jpg"] == "duplicate image id in train.json (the first entry is kept)"
    assert why["gone.jpg"] == "listed in train.json but missing from train/"
    assert why["unlisted.jpg"].startswith("not listed in train.json")
    assert why["d.jpg"].startswith("no usable year")
    assert [(r.rel, r.label) for r in load_cardb(root, split="test")] == [("test/t1.jpg", "1920")]
    assert len(load_cardb(root, split="all")) == 4
    assert detect_layout(root) == "cardb"
    assert label_names(load_records(root)) == ["1950", "1960", "1990"]
    (root/"test.json").unlink()
    with pytest.raises(DiffmineError, match="no test split"): load_cardb(root, split="test")
    (root/"train.json").write_text("[1, 2]")
    with pytest.raises(DiffmineError, match="train.json: not a JSON object"): load_cardb(root)


# ---------------------------------------------------------------------------------------------------------------
# Faces Through Time

def test_ftt_decades(tmp_path):
    root = make(tmp_path, "train/1880/a.jpg", "train/1880/b.jpg", "train/2010/c.png", "train/1950/notes.txt",
                "test/1880/t.jpg")
    (root/"train"/"1990").mkdir()                           # empty decade: absent, and reported
    report = BadInputs()
    recs = load_ftt(root, report=report)
    assert [(r.rel, r.label) for r in recs] == [("train/1880/a.jpg", "1880"), ("train/1880/b.jpg", "1880"),
                                                ("train/2010/c.png", "2010")]
    assert recs[0].meta == {"split": "train"}
    assert sorted((Path(p).name, r == EMPTY_LABEL) for p, r in report.rows) == \
        [("1950", True), ("1990", True), ("notes.txt", False)]  # 1950 holds only a text file
    assert detect_layout(root) == "ftt"
    assert rels(load_ftt(root, split="test")) == ["test/1880/t.jpg"]
    make(root, "train/misc/x.jpg")                          # not a decade: not ftt any more, and not read as a label
    assert detect_layout(root) != "ftt"
    report = BadInputs()
    assert label_names(load_ftt(root, report=report)) == ["1880", "2010"]
    assert any("not a decade" in r for _, r in report.rows)


# ---------------------------------------------------------------------------------------------------------------
# G^3

def _g3(root):
    make(root, "images/7/45.jpg", "images/7/135.jpg", "images/7/225.jpg", "images/7/315.jpg",
         "images/9/315.jpg", "images/10/45.jpg", "images/11/45.jpg", "images/12/45.jpg", "images/9/info.txt")
    (root/"metadata.csv").write_text(
        "id,country,region,sub-region,city,latitude,longitude\n"
        "7,NA,Africa,Southern Africa,Windhoek,-22.56,17.08\n"
        "9,FR,Europe,Western Europe,Paris,48.85,2.35\n"
        "8,IT,Europe,Southern Europe,Rome,41.9,12.5\n"          # no images at all
        "10,DE,Europe,Western Europe,,52.5,13.4\n"
        "7,XX,,,,,\n"                                           # duplicate id
        "12,,Europe,,,,\n")                                     # no country
    (root/"exclude.json").write_text(json.dumps(["7/225.jpg", "images/10/45.jpg"]))
    return root


def test_g3_headings_exclude_and_meta(tmp_path):
    root = _g3(tmp_path)
    report = BadInputs()
    recs = load_g3(root, report=report)
    assert [(r.rel, r.label, r.meta.get("heading")) for r in recs] == [
        ("images/7/135.jpg", "NA", 135), ("images/7/315.jpg", "NA", 315), ("images/7/45.jpg", "NA", 45),
        ("images/9/315.jpg", "FR", 315)]
    assert recs[0].meta == {"region": "Africa", "sub-region": "Southern Africa", "city": "Windhoek",
                            "latitude": -22.56, "longitude": 17.08, "heading": 135}
    why = {Path(p).name: r for p, r in report.rows}
    assert why["8"] == "listed in metadata.csv but no image in images/<id>/"
    assert why["11"].startswith("image folder has no row in metadata.csv")
    assert why["12"] == "no country in metadata.csv"
    assert why["info.txt"].startswith("not an image file")
    assert "duplicate id in metadata.csv" in why["7"]
    assert "10" not in why                                  # all its views excluded on purpose: not a bad input
    assert len(report) == 5
    assert detect_layout(root) == "g3"
    assert label_names(load_records(root)) == ["FR", "NA"]


def test_g3_missing_country_column(tmp_path):
    root = make(tmp_path, "images/7/45.jpg")
    (root/"metadata.csv").write_text("id,city\n7,Paris\n")
    with pytest.raises(DiffmineError) as e: load_g3(root)
    assert "metadata.csv" in str(e.value) and "'country'" in str(e.value)
    assert detect_layout(root) != "g3"


# ---------------------------------------------------------------------------------------------------------------
# Places365

def test_places_nested_categories(tmp_path):
    root = make(tmp_path, "a/airfield/1.jpg", "a/airfield/2.jpg", "b/basketball_court/indoor/1.jpg",
                "b/basketball_court/outdoor/1.jpg", "c/church/outdoor/3.png", "b/stray.jpg", "val_256/x.jpg")
    report = BadInputs()
    recs = load_places(root, report=report)
    assert [(r.rel, r.label) for r in recs] == [
        ("a/airfield/1.jpg", "airfield"), ("a/airfield/2.jpg", "airfield"),
        ("b/basketball_court/indoor/1.jpg", "basketball court indoor"),
        ("b/basketball_court/outdoor/1.jpg", "basketball court outdoor"), ("c/church/outdoor/3.png", "church outdoor")]
    assert [Path(p).name for p, _ in report.rows] == ["stray.jpg"]
    (root/"val_256"/"x.jpg").unlink(); (root/"val_256").rmdir()
    assert detect_layout(root) == "places"


def test_single_letter_labels_are_a_folder_dataset(tmp_path):
    root = make(tmp_path, "a/1.png", "b/2.png")             # label folders named a, b holding images: not Places
    assert detect_layout(root) == "folder"
    assert [r.label for r in load_records(root)] == ["a", "b"]


# ---------------------------------------------------------------------------------------------------------------
# detect_layout and load_records

def test_unknown_layout_names_the_folder(tmp_path):
    root = make(tmp_path/"odd", "a.png", "notes.txt")
    with pytest.raises(DiffmineError) as e: detect_layout(root)
    msg = str(e.value)
    assert str(root) in msg and "no known dataset layout" in msg
    for looked_for in ["Data_Entry_2017.csv", "metadata.csv", "train.json", "path,label", "<label>/<image>"]:
        assert looked_for in msg
    assert "not in label folders" in msg
    with pytest.raises(DiffmineError, match="does not exist"): load_records(tmp_path/"nowhere")
    with pytest.raises(DiffmineError, match="not a folder"): load_records(root/"a.png")
    with pytest.raises(DiffmineError, match="unknown layout 'imagenet'"): load_records(root, layout="imagenet")


def test_zero_usable_images_stops_the_run(tmp_path):
    root = make(tmp_path, "cats/1.txt", "cats/2.txt")
    report = BadInputs()
    with pytest.raises(DiffmineError) as e: load_records(root, layout="folder", report=report)
    assert "no usable image" in str(e.value) and "2 skipped: not an image file" in str(e.value)
    assert len(report) == 3 and report.rows[-1] == (str(root/"cats"), EMPTY_LABEL)   # the two files, and the label


def test_layout_precedence(tmp_path):
    for name, files, want in [
        ("x", ["images/a.png", "Data_Entry_2017.csv", "train.json", "metadata.csv"], "chestxray"),
        ("g", ["images/1/45.jpg", "metadata.csv", "train.json"], "g3"),
        ("c", ["train/1950/a.jpg", "train.json"], "cardb"),
    ]:
        root = make(tmp_path/name, *files)
        if (root/"metadata.csv").exists(): (root/"metadata.csv").write_text("id,country\n1,FR\n")
        assert detect_layout(root) == want, name
    assert set(LAYOUTS) == {"folder", "csv", "cardb", "ftt", "g3", "places", "chestxray", "imagefolder"}


def test_records_are_sorted_and_deterministic(tmp_path):
    names = [f"{l}/{i}.png" for i in [3, 10, 1, 2] for l in ["z", "b", "a"]]
    root = make(tmp_path, *names)
    a, b = load_records(root), load_records(root)
    assert rels(a) == sorted(names) and a == b


# ---------------------------------------------------------------------------------------------------------------
# ChestX-ray14 on the real NIH label files

@pytest.fixture(scope="module")
def nih(tmp_path_factory):
    "A ChestX-ray14 folder with the real label files, all 880 boxed images and 200 others as tiny grey PNGs."
    root = tmp_path_factory.mktemp("nih")
    for f in ["Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz"]:
        with gzip.open(NIH/f) as src, open(root/f.removesuffix(".gz"), "wb") as dst: shutil.copyfileobj(src, dst)
    entry = pd.read_csv(root/"Data_Entry_2017_v2020.csv", keep_default_na=False)
    boxes = pd.read_csv(root/"BBox_List_2017.csv")
    boxed = sorted(set(boxes["Image Index"]))
    others = [n for n in entry["Image Index"][::97] if n not in set(boxed)][:200]
    present = boxed + others
    (root/"images").mkdir()
    px = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    for n in present: px.save(root/"images"/n)
    make(root, "images/99999999_000.png")                   # an image no row names
    test = entry["Patient ID"] % 5 == 0                     # a deterministic patient-wise split of the real index
    (root/"test_list.txt").write_text("\n".join(entry["Image Index"][test]) + "\n")
    (root/"train_val_list.txt").write_text("\n".join(entry["Image Index"][~test]) + "\n")
    return dict(root=root, entry=entry, boxes=boxes, boxed=boxed, present=present,
                test=set(entry["Image Index"][test]))


def test_nih_real_files_shape():
    entry = pd.read_csv(NIH/"Data_Entry_2017_v2020.csv.gz")
    boxes = pd.read_csv(NIH/"BBox_List_2017.csv.gz")
    assert len(entry) == 112_120 and entry["Image Index"].is_unique
    assert len(boxes) == 984 and boxes["Image Index"].nunique() == 880
    assert {"Image Index", "Finding Labels", "Patient Age", "Patient Gender", "View Position"} <= set(entry.columns)
    assert list(boxes.columns[:6]) == ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]
    assert (boxes["Finding Label"] == "Infiltrate").sum() == 123


def test_chestxray_loader_on_real_labels(nih):
    root, entry = nih["root"], nih["entry"].set_index("Image Index")
    assert detect_layout(root) == "chestxray"
    report = BadInputs()
    recs = load_records(root, report=report)                 # its speed is a benchmark's business, not a test's
    by = {r.rel.removeprefix("images/"): r for r in recs}
    assert sorted(by) == sorted(nih["present"]) and rels(recs) == sorted(rels(recs))
    # labels are the '|'-split findings, "No Finding" a label of its own
    for n, r in by.items(): assert r.labels == tuple(entry.loc[n, "Finding Labels"].split("|"))
    assert "No Finding" in label_names(recs)
    want = Counter(l for n in nih["present"] for l in entry.loc[n, "Finding Labels"].split("|"))
    assert Counter(l for r in recs for l in r.labels) == want
    # every boxed image carries its boxes, in 1024-px coordinates, Infiltrate renamed
    file_boxes = nih["boxes"].groupby("Image Index")
    for n in nih["boxed"]:
        got, rows = by[n].meta["boxes"], file_boxes.get_group(n)
        assert len(got) == len(rows)
        for b, (_, row) in zip(got, rows.iterrows()):
            assert b["label"] == {"Infiltrate": "Infiltration"}.get(row["Finding Label"], row["Finding Label"])
            assert [b[k] for k in "xywh"] == pytest.approx(row[["Bbox [x", "y", "w", "h]"]].astype(float).tolist())
            assert 0 <= b["x"] and b["x"] + b["w"] <= 1024 and 0 <= b["y"] and b["y"] + b["h"] <= 1024
            assert b["label"] in by[n].labels               # the box's finding is one of the image's labels
    box_labels = Counter(b["label"] for r in recs for b in r.meta.get("boxes", []))
    assert box_labels["Infiltration"] == 123 and "Infiltrate" not in box_labels and sum(box_labels.values()) == 984
    assert sum("boxes" in r.meta for r in recs) == 880
    r0 = by["00000001_000.png"]
    assert {k: r0.meta[k] for k in ("age", "sex", "view", "patient")} == {"age": 57, "sex": "M", "view": "PA", "patient": 1}
    # listed-but-missing images are in the report, and so is the image no row names
    missing = [p for p, r in report.rows if r == "listed in Data_Entry_2017_v2020.csv but missing from images/"]
    assert len(missing) == 112_120 - len(nih["present"])
    assert str(root/"images"/"00000001_001.png") in missing
    assert [Path(p).name for p, r in report.rows if r.startswith("not listed")] == ["99999999_000.png"]
    assert len(report) == len(missing) + 1
    assert load_image(r0.path).size == (16, 16)


def test_chestxray_splits(nih, tmp_path):
    root, test = nih["root"], nih["test"]
    tr, te = load_chestxray(root, split="train"), load_chestxray(root, split="test")
    assert te and tr and {r.rel for r in tr}.isdisjoint(r.rel for r in te)
    assert sorted(rels(tr) + rels(te)) == rels(load_chestxray(root))
    assert all(r.path.name in test and r.meta["split"] == "test" for r in te)
    assert all(r.path.name not in test and r.meta["split"] == "train" for r in tr)
    report = BadInputs()
    load_chestxray(root, split="test", report=report)       # only the test split's missing images are reported
    assert sum(r.startswith("listed in") for _, r in report.rows) == len(test) - len(te)
    # only test_list.txt: train is the rest; no list at all: every image, whatever the split
    other = tmp_path/"x"
    other.mkdir()
    for f in ["Data_Entry_2017_v2020.csv", "BBox_List_2017.csv", "images", "test_list.txt"]:
        (other/f).symlink_to(root/f)
    assert rels(load_chestxray(other, split="train")) == rels(tr)
    (other/"test_list.txt").unlink()
    assert rels(load_chestxray(other, split="test")) == rels(load_chestxray(root))
    assert "split" not in load_chestxray(other)[0].meta
    with pytest.raises(DiffmineError, match="unknown split"): load_chestxray(root, split="val")


def test_chestxray_original_file_name_and_bad_tables(tmp_path):
    root = make(tmp_path, "images/00000001_000.png", "images/00000002_000.png",
                "images_002/images/00000003_000.png")          # the Kaggle mirror's folders are read too
    (root/"Data_Entry_2017.csv").write_text("Image Index,Finding Labels,Patient Age\n"
                                            "00000001_000.png,Effusion|Mass,414\n00000002_000.png,No Finding,\n"
                                            "00000002_000.png,Mass,30\n00000003_000.png,Hernia,12\n")
    (root/"BBox_List_2017.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                                           "00000001_000.png,Infiltrate,1.5,2,3,4\n")
    report = BadInputs()
    recs = load_records(root, report=report)
    assert [(r.rel, r.labels) for r in recs] == [("images/00000001_000.png", ("Effusion", "Mass")),
                                                 ("images/00000002_000.png", ("No Finding",)),
                                                 ("images_002/images/00000003_000.png", ("Hernia",))]
    assert recs[0].meta == {"age": 414, "boxes": [{"label": "Infiltration", "x": 1.5, "y": 2.0, "w": 3.0, "h": 4.0}]}
    assert recs[1].meta == {}
    assert [r for _, r in report.rows] == ["duplicate Image Index in Data_Entry_2017.csv (the first row is kept)"]
    (root/"BBox_List_2017.csv").write_text("Image Index,Finding Label,x,y,w,h\n")
    with pytest.raises(DiffmineError) as e: load_chestxray(root)
    assert "BBox_List_2017.csv" in str(e.value) and "'Bbox [x'" in str(e.value)
    (root/"Data_Entry_2017.csv").write_text("Image Index,Labels\n00000001_000.png,Mass\n")
    with pytest.raises(DiffmineError) as e: load_chestxray(root)
    assert "Data_Entry_2017.csv" in str(e.value) and "'Finding Labels'" in str(e.value)


# ---------------------------------------------------------------------------------------------------------------
# load_image: bad and awkward files

def _reason(path, **kw):
    with pytest.raises(BadImage) as e: load_image(path, **kw)
    assert e.value.path == Path(path)
    return e.value.reason


def test_broken_files_raise_bad_image(tmp_path):
    (tmp_path/"empty.png").write_bytes(b"")
    (tmp_path/"text.jpg").write_text("hello, I am not a JPEG")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8)).save(tmp_path/"noise.jpg", quality=95)
    data = (tmp_path/"noise.jpg").read_bytes()
    (tmp_path/"cut.jpg").write_bytes(data[:len(data) // 2])
    Image.fromarray(rng.integers(0, 255, (256, 256), np.uint8)).save(tmp_path/"noise.png")
    data = (tmp_path/"noise.png").read_bytes()
    (tmp_path/"cut.png").write_bytes(data[:len(data) // 2])
    assert _reason(tmp_path/"empty.png") == "empty file (0 bytes)"
    assert _reason(tmp_path/"text.jpg").startswith("not an image file")
    assert _reason(tmp_path/"cut.jpg").startswith("truncated or corrupt image (PIL: ")
    assert _reason(tmp_path/"cut.jpg", max_side=64).startswith("truncated or corrupt image")
    assert _reason(tmp_path/"cut.png").startswith("truncated or corrupt image")
    assert _reason(tmp_path/"nothing.png") == "file not found"
    assert "folder" in _reason(tmp_path)
    assert load_image(tmp_path/"noise.jpg").size == (256, 256)     # the intact file loads
    from PIL import ImageFile
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_bad_image_becomes_a_report_row(tmp_path):
    (tmp_path/"x.png").write_bytes(b"")
    report = BadInputs()
    try: load_image(tmp_path/"x.png")
    except BadImage as e: report.add(e.path, e.reason)
    assert report.rows == [(str(tmp_path/"x.png"), "empty file (0 bytes)")]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(tmp_path/"print.jpg")
    with Image.open(tmp_path/"print.jpg") as raw: assert raw.mode == "CMYK"
    im = load_image(tmp_path/"print.jpg")
    assert im.mode == "RGB" and im.size == (20, 10)
    assert np.abs(np.asarray(im).astype(int) - [255, 0, 0]).max() < 8


@pytest.mark.parametrize("peak,full", [(4095, 4095), (3000, 4095), (65535, 65535), (40000, 65535)])
def test_16bit_grey_png(tmp_path, peak, full):
    a = np.linspace(0, peak, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(a).save(tmp_path/"g16.png")
    with Image.open(tmp_path/"g16.png") as raw: assert raw.mode.startswith("I")
    im = load_image(tmp_path/"g16.png")
    assert im.mode == "RGB"
    got = np.asarray(im)
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
    np.testing.assert_array_equal(got[..., 0], np.rint(a / full * 255).astype(np.uint8))


def test_grey_1bit_and_int32_modes(tmp_path):
    Image.new("L", (4, 4), 77).save(tmp_path/"l.png")
    Image.new("1", (4, 4), 1).save(tmp_path/"b.png")
    Image.fromarray(np.full((4, 4), 4095, np.int32)).save(tmp_path/"i.tif")
    assert load_image(tmp_path/"l.png").getpixel((0, 0)) == (77, 77, 77)
    assert load_image(tmp_path/"b.png").getpixel((0, 0)) == (255, 255, 255)
    assert load_image(tmp_path/"i.tif").getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)         # index 0 black (transparent), 1 green
    p.putpixel((3, 3), 1)
    p.save(tmp_path/"logo.png", transparency=0)
    p.save(tmp_path/"logo.gif", transparency=0)
    p.save(tmp_path/"opaque.png")
    for f in ["logo.png", "logo.gif"]:
        im = load_image(tmp_path/f)
        assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255) and im.getpixel((3, 3)) == (10, 200, 30), f
    assert load_image(tmp_path/"opaque.png").getpixel((0, 0)) == (0, 0, 0)   # no transparency: black stays black


def test_rgba_and_la_composite_on_white(tmp_path):
    a = np.zeros((2, 3, 4), np.uint8)
    a[..., 0] = 200
    a[:, 0, 3], a[:, 1, 3], a[:, 2, 3] = 0, 255, 128           # transparent, opaque, half
    Image.fromarray(a, "RGBA").save(tmp_path/"rgba.png")
    px = np.asarray(load_image(tmp_path/"rgba.png"))
    assert px[0, 0].tolist() == [255, 255, 255] and px[0, 1].tolist() == [200, 0, 0]
    assert abs(int(px[0, 2, 1]) - 127) <= 2                    # half-transparent black over white is mid grey
    Image.new("LA", (2, 2), (0, 0)).save(tmp_path/"la.png")
    assert load_image(tmp_path/"la.png").getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("orientation,size", [(1, (40, 20)), (3, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_exif_orientation(tmp_path, orientation, size):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (250, 0, 0)                                    # left half red, right half blue
    a[:, 20:] = (0, 0, 250)
    exif = Image.Exif(); exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path/"phone.jpg", exif=exif, quality=95)
    im = load_image(tmp_path/"phone.jpg")
    assert im.size == size
    where_red = {1: (5, 10), 3: (35, 10), 6: (10, 5), 8: (10, 35)}[orientation]   # red half after turning upright
    r, g, b = im.getpixel(where_red)
    assert r > 200 and b < 50


def test_huge_jpeg_is_decoded_reduced(tmp_path, monkeypatch):
    Image.new("RGB", (6000, 6000), (90, 120, 150)).save(tmp_path/"huge.jpg")
    decoded = []
    orig = JpegImagePlugin.JpegImageFile.load
    def spy(self):
        decoded.append(self.size)
        return orig(self)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    im = load_image(tmp_path/"huge.jpg", max_side=512)
    assert max(im.size) <= 512 and im.size == (512, 512) and im.mode == "RGB"
    assert decoded and max(decoded[0]) <= 1500                 # libjpeg decoded at 1/4 scale, not 6000x6000
    Image.new("RGB", (3000, 1000), (1, 2, 3)).save(tmp_path/"wide.png")
    assert load_image(tmp_path/"wide.png", max_side=300).size == (300, 100)
    assert load_image(tmp_path/"wide.png", max_side=5000).size == (3000, 1000)
    Image.new("RGB", (4000, 300), (1, 2, 3)).save(tmp_path/"pano.jpg")
    assert load_image(tmp_path/"pano.jpg", max_side=400).size == (400, 30)


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("RGB", (40, 40)).save(tmp_path/"big.png")       # 1600 px: over the limit, under twice it: a warning
    Image.new("RGB", (50, 50)).save(tmp_path/"bomb.png")      # 2500 px: over twice the limit: PIL refuses
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # a warning escaping would fail the test
        assert load_image(tmp_path/"big.png").size == (40, 40)
    assert "MAX_IMAGE_PIXELS" in _reason(tmp_path/"bomb.png")


def test_loaded_image_is_detached_from_the_file(tmp_path):
    Image.new("RGB", (5, 5), (1, 2, 3)).save(tmp_path/"a.png")
    im = load_image(tmp_path/"a.png")
    (tmp_path/"a.png").unlink()
    assert im.getpixel((4, 4)) == (1, 2, 3)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path/"anim.gif", save_all=True, append_images=frames[1:])
    im = load_image(tmp_path/"anim.gif")
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 0, 0)
