"""Bad arguments are refused before anything is written, in the one error form `diffmine VERB: error: WHAT: problem`
+ `  -> fix` (exit code 2, no traceback); a `mine` that finds nothing keeps the good patches.csv; per-label file names
never collide. `diffmine.cli.main` runs in-process: no subprocess, no training."""
import os
import numpy as np, pandas as pd, pytest

from diffmine.cli import main
from diffmine.config import DiffmineError, positive
from diffmine.patches import mine_patches
from diffmine.testing import fake_run
from diffmine.clusters import cluster_run, cluster_patches
from diffmine.features import compute_features, dift_features
from diffmine.finetune import finetune
from diffmine.data import Record
from diffmine.gallery import slug, write_gallery


def refused(capsys, argv, *expect):
    "Run `diffmine argv` in-process; it must exit 2 with the one-line error form naming every `expect`."
    with pytest.raises(SystemExit) as e: main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.startswith(f"diffmine {argv[0]}: error: ") and "\n  -> " in err and "Traceback" not in err, err
    for s in expect: assert s in err, (s, err)
    return err


@pytest.fixture
def run(tmp_path):
    "A typicality run of 4 images of 32 x 32 px in two labels (no model: the maps are given)."
    rng = np.random.default_rng(0)
    return fake_run(tmp_path/"run", [(f"{l}/{i}.png", l, rng.normal(size=(32, 32))) for i, l in enumerate("aabb")])


# --- 1. non-positive counts, at the command line -------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["finetune", "DATA", "OUT", "--steps", "-1"], "--steps=-1"),
    (["finetune", "DATA", "OUT", "--steps", "0"], "--steps=0"),
    (["finetune", "DATA", "OUT", "--batch-size", "0"], "--batch-size=0"),
    (["finetune", "DATA", "OUT", "--checkpoint-every", "0"], "--checkpoint-every=0"),
    (["typicality", "MODEL", "DATA", "OUT", "--draws", "0"], "--draws=0"),
    (["typicality", "MODEL", "DATA", "OUT", "--batch-size", "-2"], "--batch-size=-2"),
    (["cluster", "RUN", "MODEL", "--k", "0"], "--k=0"),
    (["cluster", "RUN", "MODEL", "--ensemble", "0"], "--ensemble=0"),
    (["mine", "RUN", "--patch", "-4"], "--patch=-4"),
    (["mine", "RUN", "--patch", "0"], "--patch=0"),
    (["mine", "RUN", "--top", "0"], "--top=0"),
    (["mine", "RUN", "--per-image", "0"], "--per-image=0"),
    (["cotypical", "RUN", "MODEL", "--ensemble", "0"], "--ensemble=0"),
])
def test_cli_refuses_non_positive_counts(capsys, tmp_path, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    err = refused(capsys, argv, option, "not a positive whole number", f"-> pass {option.split('=')[0]} 1 or more")
    assert len(err.strip().splitlines()) == 2
    assert not (tmp_path/"OUT").exists()                                   # refused before anything is written


def test_finetune_steps_refused_on_real_data_writes_nothing(capsys, tmp_path):
    from diffmine.synth import make_planted
    data = make_planted(tmp_path/"data", n_per_label=2, size=16)
    for steps in ("-1", "0"):
        refused(capsys, ["finetune", data, tmp_path/"model", "--base", "small", "--steps", steps], f"--steps={steps}")
        assert not (tmp_path/"model").exists()


def test_mine_bad_patch_keeps_the_mined_patches(capsys, run):
    mine_patches(run, top=3)
    before = (run/"patches.csv").read_bytes()
    refused(capsys, ["mine", run, "--patch", "-4"], "--patch=-4")
    assert (run/"patches.csv").read_bytes() == before


# --- ... and in the library functions they reach ------------------------------------------------------------------
def test_positive():
    assert positive("steps", 3) == 3 and positive("k", np.int64(2)) == 2
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(DiffmineError, match=f"steps={bad}: not a positive whole number"): positive("steps", bad)


@pytest.mark.parametrize("kw", [dict(steps=0), dict(steps=-1), dict(batch_size=0), dict(checkpoint_every=0),
                                dict(resolution=0)])
def test_finetune_refuses_non_positive_counts_before_writing(tmp_path, kw):
    recs = [Record(path=tmp_path/"a.png", labels=("a",), rel="a.png")]
    name = next(iter(kw))
    with pytest.raises(DiffmineError, match=f"{name}={kw[name]}: not a positive whole number"):
        finetune(recs, tmp_path/"model", "An image of {label}.", "", base="small", **kw)
    assert not (tmp_path/"model").exists()


@pytest.mark.parametrize("kw", [dict(patch=-4), dict(patch=0), dict(top=0), dict(top=-1), dict(per_image=0)])
def test_mine_patches_refuses_non_positive_counts(run, kw):
    name = next(iter(kw))
    with pytest.raises(DiffmineError, match=f"{name}={kw[name]}: not a positive whole number"): mine_patches(run, **kw)
    assert not (run/"patches.csv").exists()


def test_clusters_and_features_refuse_non_positive_counts(run):
    mine_patches(run, top=3)
    with pytest.raises(DiffmineError, match="k=0: not a positive"): cluster_run(None, run, k=0)
    with pytest.raises(DiffmineError, match="ensemble=0: not a positive"): cluster_run(None, run, ensemble=0)
    with pytest.raises(DiffmineError, match="k=-3: not a positive"):
        cluster_patches(pd.DataFrame(dict(label=["a"], typicality=[0.])), np.zeros((1, 2)), k=-3)
    with pytest.raises(DiffmineError, match="ensemble=0: not a positive"): compute_features(None, run, ensemble=0)
    with pytest.raises(DiffmineError, match="ensemble=-1: not a positive"): dift_features(None, None, "p", ensemble=-1)
    assert not (run/"features").exists() and not (run/"clusters.csv").exists()


# --- 2. ranges and output paths: the usual error form, exit code 2 ----------------------------------------------------
@pytest.mark.parametrize("lo, hi", [("0.9", "0.1"), ("0.5", "0.5"), ("-0.1", "0.5"), ("0.2", "1.5"), ("nan", "0.5")])
def test_typicality_t_range_must_be_increasing_fractions(capsys, tmp_path, lo, hi):
    refused(capsys, ["typicality", tmp_path/"model", tmp_path/"data", tmp_path/"out", "--t-range", lo, hi],
            f"--t-range {lo} {hi}", "0 <= LO < HI <= 1")
    assert not (tmp_path/"out").exists()


def test_output_path_inside_a_file(capsys, tmp_path, run):
    (tmp_path/"file.txt").write_text("not a folder")
    bad = tmp_path/"file.txt"/"out"
    refused(capsys, ["figures", run, bad], str(tmp_path/"file.txt"), "is a file, not a folder")
    refused(capsys, ["figures", run, tmp_path/"file.txt"], str(tmp_path/"file.txt"), "is a file, not a folder")
    refused(capsys, ["gallery", run, "--out", bad], "is a file, not a folder")
    refused(capsys, ["finetune", tmp_path/"data", bad, "--base", "small"], "is a file, not a folder")
    refused(capsys, ["typicality", tmp_path/"model", tmp_path/"data", bad], "is a file, not a folder")
    refused(capsys, ["synth", "planted", bad], "is a file, not a folder")
    refused(capsys, ["evaluate", run, tmp_path/"data", "--out", bad], "is a file, not a folder")


def test_unwritable_output_folder(capsys, tmp_path, run, monkeypatch):
    locked = tmp_path/"locked"; locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(locked) else real(p, mode, **kw))
    refused(capsys, ["figures", run, locked/"figs"], str(locked), "not writable")
    refused(capsys, ["figures", run, locked], str(locked), "not writable")
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(run) else real(p, mode, **kw))
    refused(capsys, ["mine", run], str(run), "not writable")
    assert not (run/"patches.csv").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_output_folder_for_real(capsys, tmp_path, run):
    locked = tmp_path/"locked"; locked.mkdir(); locked.chmod(0o500)
    try: refused(capsys, ["figures", run, locked/"figs"], str(locked), "not writable")
    finally: locked.chmod(0o700)


def test_os_errors_while_writing_are_reported_not_raised(capsys, run, monkeypatch):
    import diffmine.cli
    def denied(*a, **kw): raise PermissionError(13, "Permission denied", str(run/"patches.csv"))
    monkeypatch.setattr(diffmine.cli, "mine_patches", denied)
    refused(capsys, ["mine", run], f"{run/'patches.csv'}: Permission denied")


# --- 3. a mine that finds nothing keeps the good patches.csv -------------------------------------------------------
def test_mine_that_finds_nothing_keeps_the_good_patches(capsys, run):
    main(["mine", str(run), "--top", "3"])
    capsys.readouterr()
    good = {f: (run/f).read_bytes() for f in ("patches.csv", "patches_skipped.csv")}
    assert len(pd.read_csv(run/"patches.csv")) == 18
    refused(capsys, ["mine", run, "--patch", "500"], str(run), "no patch mined", "smaller than the 500 px patch",
            "--patch")
    assert {f: (run/f).read_bytes() for f in good} == good
    with pytest.raises(DiffmineError, match="no patch mined"): mine_patches(run, patch=33)
    assert {f: (run/f).read_bytes() for f in good} == good


def test_mine_that_finds_nothing_on_a_fresh_run_writes_nothing(run):
    with pytest.raises(DiffmineError, match="no patch mined"): mine_patches(run, patch=500)
    assert not (run/"patches.csv").exists() and not (run/"patches_skipped.csv").exists()


# --- 4. per-label file names are unique and readable for any label ---------------------------------------------------
LABELS = ["日本", "Россия", "a/b", "a b", "a_b", "a-b", "a?b", "", " ", "label", "index", "1950s", "T-shirt/top",
          ".hidden", "..", "CON", "x" * 300, "x" * 301, "é", "e\u0301", "हिन्दी"]


def test_slug_is_unique_readable_and_safe():
    names = [slug(l) for l in LABELS]
    assert len(set(names)) == len(names), names
    assert len({n.casefold() for n in names}) == len(names)               # even on a case-insensitive disk
    for label, n in zip(LABELS, names):
        assert n and "/" not in n and "\\" not in n and not n.startswith(".") and n == n.strip()
        assert len(n.encode()) <= 120, n                                     # room for a prefix and a suffix
        assert slug(label) == n                                              # stable
    assert slug("日本").startswith("日本") and slug("Россия").startswith("Россия") and slug("हिन्दी").startswith("हिन्दी")
    assert slug("a b").startswith("a_b") and slug("T-shirt/top").startswith("T-shirt_top")
    assert [slug(l) for l in ["circles", "1950", "label"]] == ["circles", "1950", "label"]   # plain labels stay as they are


def _clusters(run, labels):
    rows = [dict(key=f"k{i}", rel=f"{i}.png", path=str(run/f"{i}.png"), label=l, x0=0, y0=0, x1=8, y1=8,
                 typicality=0.5, rank=1, ranking="T", cluster=0, cluster_rank=1, member_rank=1, distance=0.0,
                 cluster_size=1, cluster_median=0.5) for i, l in enumerate(labels)]
    pd.DataFrame(rows).to_csv(run/"clusters.csv", index=False)


def test_gallery_pages_do_not_overwrite_each_other(tmp_path):
    labels = ["日本", "Россия", "a/b", "a b", "index"]
    _clusters(tmp_path, labels)
    index = write_gallery(tmp_path)
    pages = sorted(p.name for p in index.parent.glob("*.html"))
    assert len(pages) == len(labels) + 1 and "index.html" in pages
    assert "<h1>diffmine gallery</h1>" in index.read_text()
    import re, urllib.parse
    links = re.findall(r"href='([^']+)'", index.read_text())
    assert len(links) == len(labels) and all((index.parent/urllib.parse.unquote(l)).is_file() for l in links)
    for label in labels:                                                     # each page shows its own label
        page = [p for p in index.parent.glob("*.html") if p.name != "index.html" and f"<h1>{label}</h1>" in p.read_text()]
        assert len(page) == 1, label


def test_figures_write_one_cluster_figure_per_label(capsys, tmp_path):
    rng = np.random.default_rng(0)
    labels = ["日本", "Россия", "a/b", "a b"]
    run = fake_run(tmp_path/"run", [(f"{i}.png", l, rng.normal(size=(16, 16))) for i, l in enumerate(labels)])
    _clusters(run, labels)
    main(["figures", str(run), str(tmp_path/"figs"), "--per-label", "1"])
    wrote = [l for l in capsys.readouterr().out.splitlines() if "clusters_" in l]
    assert len(wrote) == len(set(wrote)) == len(labels)
    assert len(list((tmp_path/"figs").glob("clusters_*.png"))) == len(labels)


def test_cli_refuses_a_negative_label_check(capsys):
    refused(capsys, ["typicality", "MODEL", "DATA", "OUT", "--check", "-1"], "--check=-1", "0 (off) or a positive count")
