"""Fidelity of the data the paper profile mines: G^3 reads only its four headings and
the Geo experiments mine the paper's 10 countries x 1000 seeded random images; `balanced` is a seeded shuffle per
label; Places365's validation layout is read and the Places paper profile mines it; the X-ray finetune trains on
train_val_list.txt only."""
import ast, json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from diffmine.config import DiffmineError
from diffmine.data import BadInputs, Record, detect_layout, is_image_file, load_g3, load_places, load_records

ROOT = Path(__file__).resolve().parent.parent
PAPER_COUNTRIES = ("United States", "Japan", "France", "Italy", "United Kingdom", "Brazil", "Russia", "Thailand",
                   "Nigeria", "India")     # METHOD.md section 5, as G^3's metadata.csv spells them


def make(root, *rels, size=(8, 8)):
    "Tiny real images (any other extension: a small text file) at root/rel; return root."
    root = Path(root)
    for rel in rels:
        p = root/rel; p.parent.mkdir(parents=True, exist_ok=True)
        if is_image_file(rel): Image.new("RGB", size, (len(rel) * 7 % 256, 90, 40)).save(p)
        else: p.write_text("not an image")
    return root


def rels(records): return [r.rel for r in records]


def _records(labels, n): return [Record(f"/d/{l}/{i:03d}.jpg", (l,), f"{l}/{i:03d}.jpg") for l in labels for i in range(n)]


def _code(notebook):
    "The code cells of a notebook, parsed."
    nb = json.loads((ROOT/notebook).read_text())
    return [ast.parse("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]


# ---------------------------------------------------------------------------------------------------------------
# 11. G^3: only the four headings

def test_g3_reads_only_the_four_headings(tmp_path):
    root = make(tmp_path, "images/7/45.jpg", "images/7/90.jpg", "images/7/135.jpg", "images/7/thumb.jpg",
                "images/7/315.jpg", "images/7/225.JPG", "images/8/0.jpg", "images/8/panorama.jpg")
    (root/"metadata.csv").write_text("id,country\n7,Japan\n8,France\n")
    report = BadInputs()
    recs = load_g3(root, report=report)
    assert [(r.rel, r.meta["heading"]) for r in recs] == [
        ("images/7/135.jpg", 135), ("images/7/225.JPG", 225), ("images/7/315.jpg", 315), ("images/7/45.jpg", 45)]
    why = {Path(p).name: r for p, r in report.rows}
    for name in ("90.jpg", "thumb.jpg", "0.jpg", "panorama.jpg"):
        assert "not one of the four G^3 views" in why[name], name
    assert "none of the four views" in why["8"]               # a location with images, but no view of the layout
    assert len(report) == 5


# ---------------------------------------------------------------------------------------------------------------
# 6. `balanced`: a seeded shuffle per label; the Geo paper selection: 10 countries x 1000 random images

def test_balanced_takes_a_seeded_random_sample_per_label():
    from diffmine.typicality import balanced
    rs = _records("ab", 100) + _records("c", 2)
    got = balanced(rs, 12)
    assert Counter(r.label for r in got) == {"a": 5, "b": 5, "c": 2}
    first = {f"{l}/{i:03d}.jpg" for l in "ab" for i in range(5)}
    assert set(rels(got)) - {"c/000.jpg", "c/001.jpg"} != first        # not the first N of each label in path order
    assert rels(got) == sorted(rels(got))
    assert balanced(rs, 12) == got and balanced(rs[::-1], 12) == got    # deterministic, whatever the input order
    assert balanced(rs, 12, seed=1) != got                               # the seed draws another sample
    assert set(rels(balanced(rs, 5))) <= set(rels(got))                  # a smaller limit: a subset of a larger one
    assert balanced(rs, None) == rs and balanced(rs, 0) == rs and balanced(rs, 500) == rs
    with pytest.raises(DiffmineError, match="limit"): balanced(rs, -1)


def test_sample_records_draws_per_label_from_the_given_labels():
    from diffmine.data import G3_PAPER_COUNTRIES, G3_PAPER_PER_COUNTRY, sample_records
    assert G3_PAPER_COUNTRIES == PAPER_COUNTRIES and G3_PAPER_PER_COUNTRY == 1000
    rs = _records(PAPER_COUNTRIES + ("Spain",), 30)
    got = sample_records(rs, labels=G3_PAPER_COUNTRIES, per_label=20, seed=0)
    assert Counter(r.label for r in got) == {c: 20 for c in PAPER_COUNTRIES}     # no Spain
    assert rels(got) == sorted(rels(got))
    assert {r.rel for r in got if r.label == "Japan"} != {f"Japan/{i:03d}.jpg" for i in range(20)}   # random, not first
    assert sample_records(rs[::-1], labels=G3_PAPER_COUNTRIES, per_label=20, seed=0) == got
    assert sample_records(rs, labels=G3_PAPER_COUNTRIES, per_label=20, seed=1) != got
    assert len(sample_records(rs, labels=["Japan"], per_label=100)) == 30          # fewer than asked: all of them
    assert sample_records(rs) == sorted(rs, key=lambda r: r.rel)                     # no selection: everything
    assert Counter(r.label for r in sample_records(rs, per_label=3)) == {c: 3 for c in PAPER_COUNTRIES + ("Spain",)}
    assert sample_records(rs, labels="Japan, France", per_label=2) == sample_records(rs, labels=["France", "Japan"], per_label=2)
    with pytest.raises(DiffmineError, match="'Atlantis'"): sample_records(rs, labels=["Japan", "Atlantis"])
    with pytest.raises(DiffmineError, match="per_label"): sample_records(rs, per_label=-1)


def test_geo_paper_profiles_mine_the_papers_10_countries_1000_images_each():
    from diffmine.reproduce import REGISTRY
    for name in ("geo", "geo_translation"):
        p = REGISTRY[name].profiles["paper"]
        assert tuple(c.strip() for c in p["countries"].split(",")) == PAPER_COUNTRIES, name
        assert p["per_label"] == 1000 and p["limit"] == 0, name
    assert REGISTRY["geo_translation"].profiles["paper"]["labels"] == REGISTRY["geo_translation"].profiles["paper"]["countries"]
    for name in ("geo", "geo_translation"):                # the demo keeps its stand-in's whole set of countries
        assert not REGISTRY[name].profiles["demo"].get("countries")


def test_every_profile_parameter_is_a_parameter_of_its_notebook():
    "papermill only warns about a parameter the notebook does not declare: a profile setting would be silently ignored."
    import papermill as pm
    from diffmine.reproduce import REGISTRY
    for e in REGISTRY.values():
        declared = set(pm.inspect_notebook(str(ROOT/e.notebook)))
        for profile, params in e.profiles.items():
            assert set(params) <= declared, (e.name, profile, sorted(set(params) - declared))


def _calls(notebook, fn):
    "The calls of `fn` in a notebook's code cells."
    return [n for tree in _code(notebook) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == fn]


def test_geo_notebooks_mine_the_selected_countries():
    for nb in ("nbs/experiments/geo.ipynb", "nbs/experiments/geo_translation.ipynb"):
        (call,) = _calls(nb, "sample_records")
        kw = {k.arg: ast.unparse(k.value) for k in call.keywords}
        assert kw.get("labels") == "countries" and kw.get("per_label") == "per_label", nb


# ---------------------------------------------------------------------------------------------------------------
# 7. Places365's validation layout

CATEGORIES = "/a/airfield 0\n/b/basketball_court/indoor 1\n/c/church/outdoor 2\n"


def _places_val(root, letters=True):
    make(root, *(["a/airfield/1.jpg", "b/basketball_court/indoor/1.jpg"] if letters else []),
         "val_large/Places365_val_00000001.jpg", "val_large/Places365_val_00000002.jpg",
         "val_large/Places365_val_00000003.jpg", "val_large/Places365_val_00000006.jpg", "val_large/notes.txt")
    (root/"categories_places365.txt").write_text(CATEGORIES)
    (root/"places365_val.txt").write_text("Places365_val_00000001.jpg 0\nPlaces365_val_00000002.jpg 1\n"
                                          "Places365_val_00000004.jpg 2\nPlaces365_val_00000006.jpg 999\n"
                                          "a line without a category\nPlaces365_val_00000001.jpg 2\n")
    return root


def test_places_validation_layout(tmp_path):
    root = _places_val(tmp_path)
    report = BadInputs()
    val = load_places(root, split="val", report=report)
    assert [(r.rel, r.label, r.meta) for r in val] == [
        ("val_large/Places365_val_00000001.jpg", "airfield", {"split": "val"}),
        ("val_large/Places365_val_00000002.jpg", "basketball court indoor", {"split": "val"})]
    reasons = " | ".join(r for _, r in report.rows)
    assert "not listed in places365_val.txt" in reasons                         # 00000003
    assert "listed in places365_val.txt but missing from val_large/" in reasons  # 00000004
    assert "category 999" in reasons and "categories_places365.txt" in reasons    # 00000006
    assert "cannot read" in reasons or "not '<image> <category id>'" in reasons  # the line without a category
    assert "duplicate" in reasons                                                # 00000001 listed twice
    assert "not an image file" in reasons                                        # notes.txt
    assert len(report) == 6, report.rows
    train = load_places(root)                                                   # default: the category folders
    assert [(r.rel, r.label) for r in train] == [("a/airfield/1.jpg", "airfield"),
                                                 ("b/basketball_court/indoor/1.jpg", "basketball court indoor")]
    assert rels(load_places(root, split="train")) == rels(train)
    assert rels(load_places(root, split="all")) == sorted(rels(train) + rels(val))
    assert detect_layout(root) == "places"                                      # val_large/ beside the letter folders
    assert rels(load_records(root, split="val")) == rels(val)
    with pytest.raises(DiffmineError, match="no 'test' split"): load_places(root, split="test")


def test_places_validation_set_alone(tmp_path):
    root = _places_val(tmp_path, letters=False)
    assert detect_layout(root) == "places"
    assert rels(load_records(root)) == ["val_large/Places365_val_00000001.jpg", "val_large/Places365_val_00000002.jpg"]
    with pytest.raises(DiffmineError, match="category folders"): load_places(root, split="train")
    (root/"categories_places365.txt").unlink()
    with pytest.raises(DiffmineError, match="categories_places365.txt"): load_places(root, split="val")


def test_places_val_split_needs_its_list_files(tmp_path):
    root = make(tmp_path, "a/airfield/1.jpg", "val_large/Places365_val_00000001.jpg")
    assert detect_layout(root) == "places"
    with pytest.raises(DiffmineError, match="places365_val.txt"): load_places(root, split="val")
    assert rels(load_places(root)) == ["a/airfield/1.jpg"]


def test_places_paper_profile_mines_the_validation_set():
    from diffmine.reproduce import REGISTRY, PAPER_DATA
    assert REGISTRY["places"].profiles["paper"]["split"] == "val"
    assert not REGISTRY["places"].profiles["demo"].get("split")
    assert "val_large" in PAPER_DATA["places"][2] and "places365_val.txt" in PAPER_DATA["places"][2]
    (call,) = [c for c in _calls("nbs/experiments/places.ipynb", "experiment_data")
               if any(k.arg == "split" and ast.unparse(k.value) == "split or None" for k in c.keywords)]


# ---------------------------------------------------------------------------------------------------------------
# 8. X-ray: finetune on train_val_list.txt only

def test_xray_training_records_are_train_val_list_only(tmp_path):
    from diffmine.synth import make_standin
    from diffmine.experiment import xray_training_records
    root = make_standin("xray", tmp_path/"x", n_per_label=4, size=16)
    recs = load_records(root, layout="chestxray")
    train_list = set((root/"train_val_list.txt").read_text().split())
    test_list = set((root/"test_list.txt").read_text().split())
    train = xray_training_records(recs)
    names = {Path(r.rel).name for r in train}
    assert names == train_list and not names & test_list and len(train) < len(recs)
    (root/"train_val_list.txt").unlink(); (root/"test_list.txt").unlink()
    with pytest.raises(DiffmineError, match="train_val_list.txt"):
        xray_training_records(load_records(root, layout="chestxray"))


def test_xray_notebook_finetunes_on_the_training_records():
    nb = "nbs/experiments/xray.ipynb"
    assert _calls(nb, "xray_training_records")
    for fn in ("finetune", "experiment_model"):
        for call in _calls(nb, fn):
            assert ast.unparse(call.args[0]) == "train", (fn, ast.unparse(call))


# ---------------------------------------------------------------------------------------------------------------
# The experiment notebooks, run with the paper profile's selection at smoke size

def _run(notebook, tmp_path, **params):
    from diffmine.reproduce import run_notebook
    run_notebook(notebook, tmp_path/"executed.ipynb", dict(run_dir=str(tmp_path/"run"), figures_dir=str(tmp_path/"figs"),
                                                           **params), root=ROOT)
    return json.loads((tmp_path/"figs"/"metrics.json").read_text())


@pytest.mark.slow
def test_geo_notebook_mines_the_chosen_countries_only(tmp_path):
    m = _run("nbs/experiments/geo.ipynb", tmp_path, data_root=str(tmp_path/"data"), countries="Japan,France",
             per_label=3, limit=0)
    assert (m["images"], m["labels"]) == (6, 2)
    assert m["parameters"]["countries"] == "Japan,France" and m["parameters"]["per_label"] == 3


@pytest.mark.slow
def test_places_notebook_mines_the_validation_set(tmp_path):
    import pandas as pd, shutil
    from diffmine.synth import make_standin
    data = make_standin("places", tmp_path/"data", n_per_label=4, size=32)
    for f in ("groundtruth.json", "groundtruth.npz"): (data/f).unlink(missing_ok=True)   # real data: no ground truth
    train = load_places(data)
    cats = sorted({r.rel.rsplit("/", 1)[0] for r in train})
    (data/"categories_places365.txt").write_text("".join(f"/{c} {i}\n" for i, c in enumerate(cats)))
    (data/"val_large").mkdir(); lines = []
    for k, r in enumerate([r for c in cats for r in [r for r in train if r.rel.rsplit("/", 1)[0] == c][:2]], 1):
        name = f"Places365_val_{k:08d}{Path(r.rel).suffix}"
        shutil.copy(r.path, data/"val_large"/name); lines.append(f"{name} {cats.index(r.rel.rsplit('/', 1)[0])}\n")
    (data/"places365_val.txt").write_text("".join(lines))
    m = _run("nbs/experiments/places.ipynb", tmp_path, data_root=str(data), split="val", limit=0)
    index = pd.read_csv(tmp_path/"run"/"typicality"/"index.csv")
    assert len(index) == 2 * len(cats) and index.rel.str.startswith("val_large/").all()
    assert m["images"] == 2 * len(cats) and m["parameters"]["split"] == "val"
