"""Reliability, as a user meets it, with real `diffmine` subprocesses: a dirty dataset (unreadable files,
odd colour modes, rotated, tiny and huge images, spaces and non-ASCII in paths, an empty label folder) runs through
finetune -> typicality -> mine -> cluster; runs killed with SIGKILL and rerun give bit-identical outputs; the same
seed gives the same results; `--cache-dtype float16` halves the maps' bytes without changing the mined patches.

One tiny model (16 px, finetuned a few steps on the dirty corpus) and one reference run are shared by all tests."""
import contextlib, io, json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image, ImageDraw

from diffmine.cli import main as cli_main
from diffmine.data import load_records, EMPTY_LABEL
from diffmine.models import load_model
from diffmine.typicality import compute_typicality
from diffmine import testing

pytestmark = pytest.mark.slow   # whole-CLI runs with kills and an 8000 px image, about 7 min: `make test-slow` (CI runs it after `make test`)

BIN = Path(sys.executable).parent/"diffmine"
ENV = {**os.environ, "DIFFMINE_QUIET": "1", "HF_HUB_OFFLINE": "1"}
LABELS = ("dots", "bars ü")          # a label folder with a space and a non-ASCII character
TYP = ["--draws", 4, "--batch-size", 4]   # one UNet call per image: cheap, yet 47 images leave time for a kill
CLUSTER = ["--k", 2, "--ensemble", 4]
UNREADABLE = {"truncated.jpg": "truncated or corrupt", "zero.jpg": "empty file", "notes.jpg": "not an image file"}
CONVERTIBLE = ["cmyk.jpg", "grey16.png", "palette.png", "rgba.png", "exif rotated.jpg"]


def run(*args, check=True):
    p = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=ENV)
    if check: assert p.returncode == 0, p.stderr[-3000:]
    return p


def _good_image(rng, label, size):
    "A small picture: noise plus the label's shape (a disc or a bar), so the model has something to learn."
    a = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    im = Image.fromarray(a); d = ImageDraw.Draw(im)
    x, y = rng.integers(0, max(1, size // 2), 2)
    if label == "dots": d.ellipse([x, y, x + size // 3, y + size // 3], fill=(230, 60, 60))
    else: d.rectangle([x, y, x + 3, y + size // 2], fill=(60, 200, 230))
    return im


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "A folder-layout dataset with 40 good images and every bad kind; returns (root, {kind: rel path})."
    root = tmp_path_factory.mktemp("rel")/"dirty corpus é"
    rng = np.random.default_rng(0)
    for li, label in enumerate(LABELS):
        (root/label).mkdir(parents=True)
        for i in range(20):
            name = f"bild ä {i:02d}.jpg" if i % 2 else f"img {i:02d}.png"          # spaces, non-ASCII, PNG and JPEG
            _good_image(rng, label, 20 + 2 * (i % 5)).save(root/label/name, quality=95)
    (root/"empty label").mkdir()                                                   # contributes no label
    dots, bars = root/LABELS[0], root/LABELS[1]
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noise.save(dots/"full.jpg"); (dots/"truncated.jpg").write_bytes((dots/"full.jpg").read_bytes()[:1500])
    (dots/"full.jpg").unlink()
    (dots/"zero.jpg").write_bytes(b"")
    (bars/"notes.jpg").write_text("this is not a picture\n")
    Image.new("CMYK", (24, 24), (0, 200, 200, 0)).save(dots/"cmyk.jpg")
    Image.fromarray((np.arange(24 * 24).reshape(24, 24) * 100).astype(np.uint16)).save(bars/"grey16.png")
    pal = _good_image(rng, "dots", 24).convert("P", palette=Image.Palette.ADAPTIVE, colors=16); pal.save(dots/"palette.png")
    rgba = _good_image(rng, "bars ü", 24).convert("RGBA"); rgba.putalpha(128); rgba.save(bars/"rgba.png")
    exif = Image.Exif(); exif[0x0112] = 6                                          # rotate 90 degrees when shown
    _good_image(rng, "dots", 32).crop((0, 0, 32, 20)).save(dots/"exif rotated.jpg", exif=exif)
    _good_image(rng, "bars ü", 4).save(bars/"tiny.png")                            # smaller than the 8 px patch
    big = Image.new("RGB", (3000, 3000), (40, 40, 40)); ImageDraw.Draw(big).ellipse([800, 800, 2200, 2200], fill=(230, 60, 60))
    big.save(dots/"large.jpg", quality=80)
    kinds = {p.name: p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(("img", "bild"))}
    return root, kinds


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory):
    "The shared tiny model, finetuned on the dirty corpus for a bit more than one epoch (every file is seen)."
    root, _ = corpus
    out = tmp_path_factory.mktemp("rel")/"model ü"
    t0 = time.time()
    run("finetune", root, out, "--base", "small", "--steps", 14, "--batch-size", 4, "--resolution", 16, "--lr", 1e-3, "--checkpoint-every", 14)
    print(f"finetune: {time.time() - t0:.1f} s")
    return out


@pytest.fixture(scope="module")
def reference(corpus, model, tmp_path_factory):
    "An uninterrupted run: typicality -> mine -> cluster."
    root, _ = corpus
    out = tmp_path_factory.mktemp("rel")/"reference run"
    run("typicality", model, root, out, *TYP)
    run("mine", out, "--patch", 8)
    run("cluster", out, model, *CLUSTER)
    return out


def _maps(run_dir):
    "{file name: (map, per_draw, size)} of a typicality run."
    out = {}
    for f in sorted((Path(run_dir)/"maps").glob("*.npz")):
        with np.load(f) as z: out[f.name] = (z["map"], z["per_draw"], z["size"])
    return out


def _assert_same_maps(a, b):
    ma, mb = _maps(a), _maps(b)
    assert sorted(ma) == sorted(mb) and ma
    for name in ma:
        for x, y in zip(ma[name], mb[name]): assert x.dtype == y.dtype and np.array_equal(x, y), name


def _kill_when(args, ready, timeout=120):
    "Start `diffmine ARGS`, SIGKILL it as soon as `ready()` holds; the test fails if it finished first."
    proc = subprocess.Popen([str(BIN), *map(str, args)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready(): time.sleep(0.005)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert not finished, "the run ended before it could be killed: make it slower"


# ---------------------------------------------------------------------------------------------------------------------
# 1. The dirty corpus end to end

def test_dirty_corpus_end_to_end(corpus, model, reference):
    root, kinds = corpus
    bad_rels = {kinds[n] for n in UNREADABLE}
    # finetune saw every file once: the unreadable ones are listed with their reason, nothing else
    fbad = pd.read_csv(model/"bad_inputs.csv")
    assert {Path(p).relative_to(root).as_posix() for p in fbad.path} == bad_rels | {"empty label"}
    assert fbad.reason[fbad.path == str(root/"empty label")].tolist() == [EMPTY_LABEL]   # the empty label folder
    assert (model/"unet").is_dir() and sorted(json.loads((model/"diffmine.json").read_text())["labels"]) == sorted(LABELS)
    # typicality: every readable image has a map and an index row; the unreadable ones are in bad_inputs.csv
    idx = pd.read_csv(reference/"index.csv", keep_default_na=False)
    good = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.startswith(("img", "bild"))}
    readable = good | {kinds[n] for n in CONVERTIBLE + ["tiny.png", "large.jpg"]}
    assert set(idx.rel) == readable and len(idx) == 47 and len(list((reference/"maps").glob("*.npz"))) == 47
    assert np.isfinite(idx.typicality).all()
    tbad = pd.read_csv(reference/"bad_inputs.csv")
    reasons = {Path(p).relative_to(root).as_posix(): r for p, r in zip(tbad.path, tbad.reason)}
    assert set(reasons) == bad_rels | {"empty label"}                   # convertible kinds are not listed
    for name, why in UNREADABLE.items(): assert why in reasons[kinds[name]], (name, reasons[kinds[name]])
    sizes = idx.set_index("rel")[["height", "width"]]
    assert sizes.loc[kinds["exif rotated.jpg"]].tolist() == [32, 20]     # stored 32 x 20 landscape, shown portrait
    assert sizes.loc[kinds["large.jpg"]].tolist() == [3000, 3000] and sizes.loc[kinds["tiny.png"]].tolist() == [4, 4]
    # mine: the too-small image is a recorded skip, every other image has patches
    patches = pd.read_csv(reference/"patches.csv", keep_default_na=False)
    skipped = pd.read_csv(reference/"patches_skipped.csv", keep_default_na=False)
    assert skipped.rel.tolist() == [kinds["tiny.png"]] and "smaller than the 8 px patch" in skipped.reason[0]
    assert set(patches.rel) <= readable - {kinds["tiny.png"]} and set(patches.label) == set(LABELS)
    assert ((patches.x1 - patches.x0) == 8).all() and (patches.x1 <= patches.rel.map(sizes.width)).all()
    # cluster: every T patch is clustered; DIFT features exist for every image with patches
    clusters = pd.read_csv(reference/"clusters.csv", keep_default_na=False)
    assert len(clusters) == (patches.ranking == "T").sum() and set(clusters.label) == set(LABELS)
    assert {f.stem for f in (reference/"features").glob("*.npz")} == set(patches[patches.ranking == "T"].key)
    assert clusters.groupby("label").cluster_rank.max().max() <= 2


def _cli(*args):
    "`diffmine ARGS` in-process (the same entry point as the command): (exit status, stderr)."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: cli_main([str(a) for a in args]); code = 0
        except SystemExit as e: code = e.code
    return code, err.getvalue()


def test_meaningless_inputs_stop_with_a_clear_message(corpus, model, tmp_path):
    root, _ = corpus
    csvdata = tmp_path/"csv data"; csvdata.mkdir()
    Image.new("RGB", (8, 8)).save(csvdata/"a.png")
    (csvdata/"labels.csv").write_text("path,category\na.png,dots\n")            # the label column is missing
    code, err = _cli("finetune", csvdata, tmp_path/"m", "--base", "small", "--layout", "csv", "--steps", 1)
    assert code == 2 and str(csvdata/"labels.csv") in err and "no column 'label'" in err
    nounet = tmp_path/"not a model"; nounet.mkdir(); (nounet/"scheduler").mkdir()
    code, err = _cli("typicality", nounet, root, tmp_path/"out")
    assert code == 2 and str(nounet) in err and "no unet/" in err
    loose = tmp_path/"loose images"; loose.mkdir()
    Image.new("RGB", (8, 8)).save(loose/"a.png"); (loose/"readme.txt").write_text("hi")
    code, err = _cli("typicality", model, loose, tmp_path/"out2")
    assert code == 2 and f"{loose}: no known dataset layout" in err and "one folder per label" in err


# ---------------------------------------------------------------------------------------------------------------------
# 2. Interrupted runs: SIGKILL, rerun, bit-identical outputs

def test_killed_typicality_and_cluster_rerun_bit_identical(corpus, model, reference, tmp_path):
    root, _ = corpus
    out = tmp_path/"killed run"
    maps = out/"maps"
    _kill_when(["typicality", model, root, out, *TYP], lambda: maps.is_dir() and len(list(maps.glob("*.npz"))) >= 3)
    done = len(list(maps.glob("*.npz")))
    assert 3 <= done < 47 and not (out/"index.csv").exists()
    # what a killed or failed write can leave behind: never taken for a finished map
    (maps/".leftover.npz.k2j4x.tmp").write_bytes(b"PK\x03\x04 half")
    victim = sorted(maps.glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:300])                                 # truncated (disk full)
    run("typicality", model, root, out, *TYP)
    assert not list(maps.glob(".*")) and not list(out.glob(".*"))                # the rerun swept the leftovers
    _assert_same_maps(reference, out)
    assert (reference/"index.csv").read_bytes() == (out/"index.csv").read_bytes()
    assert (reference/"bad_inputs.csv").read_bytes() == (out/"bad_inputs.csv").read_bytes()
    run("mine", out, "--patch", 8)
    assert (reference/"patches.csv").read_bytes() == (out/"patches.csv").read_bytes()
    feats = out/"features"
    _kill_when(["cluster", out, model, *CLUSTER], lambda: feats.is_dir() and len(list(feats.glob("*.npz"))) >= 3)
    assert len(list(feats.glob("*.npz"))) >= 3 and not (out/"clusters.csv").exists()
    (feats/".leftover.npz.a8d0q.tmp").write_bytes(b"PK\x03\x04 half")
    victim = sorted(feats.glob("*.npz"))[0]; victim.write_bytes(victim.read_bytes()[:200])
    run("cluster", out, model, *CLUSTER)
    assert not list(feats.glob(".*"))
    names = sorted(f.name for f in (reference/"features").glob("*.npz"))
    assert names == sorted(f.name for f in feats.glob("*.npz"))
    for name in names:
        with np.load(reference/"features"/name) as a, np.load(feats/name) as b:
            assert np.array_equal(a["features"], b["features"]) and np.array_equal(a["size"], b["size"]), name
    assert (reference/"clusters.csv").read_bytes() == (out/"clusters.csv").read_bytes()


def test_corrupt_map_outside_the_run_is_reported_not_fatal(corpus, model, tmp_path):
    "A corrupt cache file the run does not recompute (not one of its images) is left out of the index and reported."
    root, _ = corpus
    m, recs = load_model(model, device="cpu"), load_records(root)
    out = tmp_path/"run"
    compute_typicality(m, recs, out, n=2, limit=4)
    (out/"maps"/"stranger-0123abcd.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert len(compute_typicality(m, recs, out, n=2, limit=4)) == 4
    bad = pd.read_csv(out/"bad_inputs.csv")
    assert [r for p, r in zip(bad.path, bad.reason) if "stranger" in p] == \
        ["cached typicality map is unreadable (BadZipFile): delete it and rerun typicality"]


# ---------------------------------------------------------------------------------------------------------------------
# 3. Determinism

def test_same_seed_same_results_any_batch_size(corpus, model, reference, tmp_path):
    root, _ = corpus
    # across two CLI runs with the same seed, bit for bit: maps, index.csv, patches.csv and clusters.csv are compared
    # byte for byte with the reference run in the killed-and-rerun test above (its rerun is a fresh process)
    # another batch size regroups the draws into other UNet calls: BLAS then sums in another order, so the maps agree
    # to float32 rounding, not bit for bit
    b = tmp_path/"batch 16"
    run("typicality", model, root, b, "--draws", 4, "--batch-size", 2)
    ma, mb = _maps(reference), _maps(b)
    assert sorted(ma) == sorted(mb)
    for name in ma: np.testing.assert_allclose(mb[name][0], ma[name][0], rtol=1e-4, atol=1e-5 * np.abs(ma[name][0]).max())
    assert not all(np.array_equal(ma[n][0], list(ma.values())[0][0]) for n in ma)   # the maps are not trivial


# ---------------------------------------------------------------------------------------------------------------------
# 4. --cache-dtype float16

def test_float16_cache_halves_maps_same_patches(corpus, model, reference, tmp_path):
    root, _ = corpus
    h = tmp_path/"half"
    run("typicality", model, root, h, *TYP, "--cache-dtype", "float16")
    assert json.loads((h/"run.json").read_text())["params"]["cache_dtype"] == "float16"
    m32, m16 = _maps(reference), _maps(h)
    assert sorted(m32) == sorted(m16)
    map_bytes = sum(m[0].nbytes for m in m32.values())
    assert all(m[0].dtype == np.float16 for m in m16.values()) and sum(m[0].nbytes for m in m16.values()) * 2 == map_bytes
    size = lambda d: sum(f.stat().st_size for f in (d/"maps").glob("*.npz"))
    # the map's bytes halve exactly; at 16 px the metadata (strings, zip headers) is most of each file, so the total
    # falls by exactly half the map bytes (at 512 px, 64 x 64 maps, a file goes from about 19 KB to 11 KB)
    assert size(reference) - size(h) == map_bytes // 2
    run("mine", h, "--patch", 8)
    cols = ["label", "rank", "key", "x0", "y0", "x1", "y1"]
    p32, p16 = (pd.read_csv(d/"patches.csv", keep_default_na=False) for d in (reference, h))
    top = lambda p: p[(p.ranking == "T") & (p["rank"] <= 10)].reset_index(drop=True)   # the top 10 per label
    t32, t16 = top(p32), top(p16)
    pd.testing.assert_frame_equal(t32[cols[:3]], t16[cols[:3]])          # same images in the same order
    # same boxes, except on the 3000 px image: its 16 x 16 map upsampled ~190x is flat over hundreds of pixels, so
    # many boxes tie to float32 rounding and float16 picks others on the same plateau, of the same typicality
    plateau = t32.rel == corpus[1]["large.jpg"]
    pd.testing.assert_frame_equal(t32[~plateau][cols], t16[~plateau][cols])
    np.testing.assert_allclose(t16.typicality[plateau], t32.typicality[plateau], rtol=1e-3)
    # below the top 10, patches of near-equal typicality may swap ranks under float16 rounding, and on the plateau image
    # NMS may keep a box more or fewer (seen with one torch thread): per label and ranking, the same number of patches
    # give the same sorted typicality to float16 precision, and nearly all boxes are the same
    scale = p32.typicality.abs().max()
    for (label, ranking), g32 in p32.groupby(["label", "ranking"]):
        g16 = p16[(p16.label == label) & (p16.ranking == ranking)]
        assert abs(len(g16) - len(g32)) <= 1, (label, ranking, len(g32), len(g16))
        if len(g16) == len(g32):
            np.testing.assert_allclose(np.sort(g16.typicality), np.sort(g32.typicality), rtol=1e-2, atol=1e-3 * scale)
    boxes = lambda p: set(p[cols[2:]].itertuples(index=False, name=None))
    assert len(boxes(p32) & boxes(p16)) >= 0.95 * len(boxes(p32))


# ---------------------------------------------------------------------------------------------------------------------
# 5. Killed while mining; a very large image through every stage, in bounded memory

def test_killed_mining_rerun_bit_identical(tmp_path):
    "Mining writes patches.csv once, atomically: a run killed half-way leaves nothing a rerun could take for output."
    from diffmine.testing import fake_run
    rng = np.random.default_rng(0)
    items = [(f"{'ab'[i % 2]}/{i:03d}.png", "ab"[i % 2], rng.normal(size=(32, 32)).astype(np.float32), (600, 600))
             for i in range(160)]
    ref, out = fake_run(tmp_path/"ref", items), fake_run(tmp_path/"killed", items)
    run("mine", ref, "--patch", 40)
    err = tmp_path/"stderr.txt"
    with open(err, "w") as fh:                          # progress bars on: the kill waits until mining is under way
        proc = subprocess.Popen([str(BIN), "mine", str(out), "--patch", "40"], stdout=subprocess.DEVNULL, stderr=fh,
                                env={**ENV, "DIFFMINE_QUIET": "0"})
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and "%|" not in err.read_text().replace("  0%|", ""):
            time.sleep(0.01)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL); proc.wait()
    assert not finished, "mining ended before it could be killed"
    assert not (out/"patches.csv").exists()
    (out/".patches.csv.x81k2.tmp").write_text("key,rel\nhalf")                  # as if killed while writing it
    run("mine", out, "--patch", 40)
    # byte for byte, once the run folder's own name (in the `path` column of synthetic runs) is taken out
    a, b = ((d/"patches.csv").read_text().replace(str(d), "RUN") for d in (ref, out))
    assert a == b and len(a.splitlines()) == 1 + 3 * 2 * 80 * 5
    assert (ref/"patches_skipped.csv").read_bytes() == (out/"patches_skipped.csv").read_bytes()
    assert not list(out.glob(".*.tmp"))


def _peak_mib(*args) -> float:
    "Run `diffmine ARGS` and return its peak resident memory in MiB: the high-water mark the kernel keeps for it."
    # (not ru_maxrss: after fork + exec a child's ru_maxrss starts at its parent's size, here the whole test process)
    proc = subprocess.Popen([str(BIN), *map(str, args)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, hwm = Path(f"/proc/{proc.pid}/status"), 0
    while proc.poll() is None:
        try: hwm = max(hwm, next(int(l.split()[1]) for l in status.read_text().splitlines() if l.startswith("VmHWM")))
        except (OSError, StopIteration): pass                  # exiting: the last reading stands
        time.sleep(0.02)
    assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
    return hwm / 1024


def test_8000px_image_every_stage_bounded_memory(corpus, model, tmp_path):
    "An 8000 x 8000 JPEG with small images through typicality, mine, cluster, figures and gallery."
    root = tmp_path/"big data"
    rng = np.random.default_rng(5)
    for label in LABELS:
        (root/label).mkdir(parents=True)
        for i in range(3): _good_image(rng, label, 24).save(root/label/f"{i}.png")
    big = Image.new("RGB", (8000, 8000), (40, 40, 40))
    ImageDraw.Draw(big).ellipse([2000, 2500, 5000, 5500], fill=(230, 60, 60))
    big.save(root/LABELS[0]/"huge.jpg", quality=70); del big
    out = tmp_path/"big run"
    peaks = {"typicality": _peak_mib("typicality", model, root, out, *TYP)}
    idx = pd.read_csv(out/"index.csv", keep_default_na=False).set_index("rel")
    assert idx.loc[f"{LABELS[0]}/huge.jpg", ["height", "width"]].tolist() == [8000, 8000]
    peaks["mine"] = _peak_mib("mine", out)
    p = pd.read_csv(out/"patches.csv", keep_default_na=False)
    hp = p[p.rel == f"{LABELS[0]}/huge.jpg"]
    from diffmine.patches import default_patch_size   # 64 px in working pixels, scaled to the image
    from diffmine.runfolder import RunFolder
    k = default_patch_size(64, 8000, RunFolder(out).resolution)
    assert len(hp) == 15 and ((hp.x1 - hp.x0) == k).all() and (hp[["x1", "y1"]] <= 8000).all().all()
    peaks["cluster"] = _peak_mib("cluster", out, model, *CLUSTER)
    peaks["figures"] = _peak_mib("figures", out, tmp_path/"fig", "--per-label", 4)
    peaks["gallery"] = _peak_mib("gallery", out)
    assert (tmp_path/"fig"/"patches.png").exists() and (out/"gallery"/"index.html").exists()
    print("peak MiB:", {k: round(v) for k, v in peaks.items()})
    # a decoded 8000 x 8000 RGB image is 183 MiB: only figures and the gallery (which cut 64 px patches out of it at
    # full resolution) ever hold one, and never more than a few copies at once
    for verb, mib in peaks.items(): assert mib < 1500, (verb, mib)
    assert peaks["typicality"] < 1000 and peaks["mine"] < 1000 and peaks["cluster"] < 1000, peaks


# ---------------------------------------------------------------------------------------------------------------------
# 6. Metadata problems, through the command line

def test_metadata_problems_are_recorded_skips(corpus, model, tmp_path):
    "A CSV dataset listing a missing file, a path twice, a label the model never saw, and paths with spaces/umlauts."
    root, _ = corpus
    data = tmp_path/"csv dätä"
    rng = np.random.default_rng(2)
    rows = []
    for i, label in enumerate([*LABELS, *LABELS]):
        rel = f"pics/{label} {i}.png"
        (data/"pics").mkdir(parents=True, exist_ok=True); _good_image(rng, label, 20).save(data/rel)
        rows.append((rel, label))
    _good_image(rng, "dots", 20).save(data/"pics"/"zebra.png")
    rows += [("pics/gone.png", "dots"), (rows[0][0], "dots"), ("pics/zebra.png", "zebra")]
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(data/"labels.csv", index=False)
    out = tmp_path/"out"
    p = run("typicality", model, data, out, "--draws", 2)
    assert "3 unreadable inputs listed" in p.stdout
    bad = pd.read_csv(out/"bad_inputs.csv")
    why = {Path(path).name: reason for path, reason in zip(bad.path, bad.reason)}
    assert why == {"gone.png": "listed in labels.csv but missing on disk",
                   f"{LABELS[0]} 0.png": "duplicate image id (listed again in labels.csv; the first row is kept)",
                   "zebra.png": why["zebra.png"]} and "'zebra' is not one the model was trained on" in why["zebra.png"]
    assert sorted(pd.read_csv(out/"index.csv", keep_default_na=False).rel) == sorted(r for r, _ in rows[:4])
    # a table without its label column stops the run, naming the file, the problem and the fix
    pd.DataFrame(rows, columns=["path", "category"]).to_csv(data/"labels.csv", index=False)
    p = run("typicality", model, data, tmp_path/"out2", "--draws", 2, "--layout", "csv", check=False)
    assert p.returncode == 2 and str(data/"labels.csv") in p.stderr and "no column 'label'" in p.stderr
    assert "add a 'label' column" in p.stderr
    # data whose labels the model never saw at all: a clear error, not a run of skips
    for animal in ("zebra", "yak"):              # two labels (one label alone is refused before this check)
        (tmp_path/"zoo"/animal).mkdir(parents=True); _good_image(rng, "dots", 20).save(tmp_path/"zoo"/animal/"z.png")
    p = run("typicality", model, tmp_path/"zoo", tmp_path/"out3", check=False)
    assert p.returncode == 2 and str(model) in p.stderr and "none of the data's labels is one the model was trained on" in p.stderr


def test_g3_repeated_ids_and_missing_views(tmp_path):
    from diffmine.models import save_model
    m = testing.tiny_model()
    m.spec.update(template="A Google streetview image of {country}.", null_prompt="A Google streetview image.",
                  resolution=16, dataset="geo", labels=["France", "Japan"])
    model = save_model(m, tmp_path/"geo model")
    data = tmp_path/"g3 data"
    rng = np.random.default_rng(3)
    for id_ in ["a1", "b2", "c3"]:
        (data/"images"/id_).mkdir(parents=True)
        for h in (45, 135): _good_image(rng, "dots", 20).save(data/"images"/id_/f"{h}.jpg")
    (data/"metadata.csv").write_text("id,country,city\na1,France,Paris\nb2,Japan,Kyoto\na1,Japan,Osaka\n"
                                     "zz,France,Lyon\nc3,Brazil,Recife\n")
    out = tmp_path/"out"
    run("typicality", model, data, out, "--draws", 2)
    bad = pd.read_csv(out/"bad_inputs.csv")
    rows = [(Path(p).relative_to(data).as_posix(), r) for p, r in zip(bad.path, bad.reason)]
    assert ("images/a1", "duplicate id in metadata.csv (the first row is kept)") in rows
    assert ("images/zz", "listed in metadata.csv but no image in images/<id>/") in rows
    assert sum("'Brazil' is not one the model was trained on" in r for _, r in rows) == 2     # both views of c3
    idx = pd.read_csv(out/"index.csv", keep_default_na=False)
    assert sorted(zip(idx.rel, idx.label)) == [("images/a1/135.jpg", "France"), ("images/a1/45.jpg", "France"),
                                               ("images/b2/135.jpg", "Japan"), ("images/b2/45.jpg", "Japan")]
