"""Adaptive typicality: the same top-K patches as the full protocol on a test UNet whose answer is known, UNet
evaluations counted exactly and within the budget, a run folder the rest of the pipeline reads, determinism, resume,
bad images, and the command line."""
import json
import numpy as np, pandas as pd, pytest, torch
from PIL import Image

from diffmine.data import Record
from diffmine.typicality import compute_typicality
from diffmine.testing import GreyOracle, OracleUNet
from diffmine.runfolder import load_index, load_typicality, image_key
from diffmine.patches import mine_patches
from diffmine.adaptive import adaptive_typicality, adaptive_cost, unit_maps, stage_draws, window_stats, image_stats
from diffmine.drawbank import topk_overlap

KW = dict(template="An image of {label}.", null_prompt="", t_range=(0.1, 0.3))   # t where the test UNet separates well


def grey_images(root, labels=("a", "b", "c"), n=6, kinds=("full", "full", "notch", "small", "none", "none"), seed=0):
    "Checkerboards (x0 = +-1) with a mid-grey (x0 ~ 0) 4 px square, the same less a corner pixel, a 3 px square, or none."
    rng, recs = np.random.default_rng(seed), []
    for lab in labels:
        for i in range(n):
            a = (np.indices((16, 20)).sum(0) % 2 * 255).astype(np.uint8)
            kind = kinds[i % len(kinds)]
            y, x = rng.integers(0, 12), rng.integers(0, 16)
            if kind != "none": a[y:y + 4, x:x + 4] = 128
            if kind == "notch": a[y, x] = 0
            if kind == "small": a[y + 3, x:x + 4] = 0; a[y:y + 4, x + 3] = 255
            p = root/lab/f"{i}.png"; p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([a] * 3, -1)).save(p)
            recs.append(Record(path=p, labels=(lab,), rel=f"{lab}/{i}.png"))
    return recs


@pytest.fixture()
def oracle_model(tiny_model):
    m = tiny_model
    m.unet = GreyOracle(m)
    return m


def _top(run, top=2):
    return sorted(map(tuple, mine_patches(run, patch=4, top=top, rankings="T")[["label", "rel", "x0", "y0"]].values))


@pytest.mark.parametrize("antithetic,halving", [(True, True), (False, False)])
def test_adaptive_top_k_equals_the_full_protocol(tmp_path, oracle_model, antithetic, halving):
    recs = grey_images(tmp_path/"data")
    adaptive_typicality(oracle_model, recs, tmp_path/"ad", budget=30, top=2, patch=4, antithetic=antithetic,
                              halving=halving, **KW)
    cost = adaptive_cost(tmp_path/"ad")
    assert cost["unet_evals"] == oracle_model.unet.inputs                 # counted exactly
    per = pd.read_csv(tmp_path/"ad"/"adaptive.csv")
    assert per.evals.sum() == cost["unet_evals"] and (per.evals == 2 * per.draws).all()
    assert cost["unet_evals"] <= 30 * len(recs)                          # within the budget
    assert cost["saving"] >= 200 / 30
    assert len(cost["stages"]) >= 2 and per.draws.max() > per.draws.min()   # some images got more draws
    compute_typicality(oracle_model, recs, tmp_path/"full", n=100, **KW)
    assert _top(tmp_path/"ad") == _top(tmp_path/"full")
    # the refined images are the ambiguous ones: the notched squares, close to the full squares
    refined = set(per[per.draws > per.draws.min()].rel)
    assert {r.rel for r in recs if r.rel.endswith(("/2.png",))} & refined


def test_run_folder_is_a_typicality_run(tmp_path, oracle_model):
    recs = grey_images(tmp_path/"data", n=4)
    idx = adaptive_typicality(oracle_model, recs, tmp_path/"ad", budget=20, top=2, patch=4, **KW)
    full = compute_typicality(oracle_model, recs, tmp_path/"full", n=4, **KW)
    assert list(idx.columns) == list(full.columns) and sorted(idx.rel) == sorted(full.rel)
    m = load_typicality(tmp_path/"ad", recs[0].rel)
    assert m.shape == (16, 20) and m.dtype == np.float32
    with np.load(tmp_path/"ad"/"maps"/f"{image_key(recs[0].rel)}.npz") as z:
        assert {"map", "size", "per_draw", "rel", "label", "prompt", "path", "draws", "evals"} <= set(z.files)
        assert int(z["draws"]) == len(z["per_draw"])
    p = mine_patches(tmp_path/"ad", patch=4, top=3)
    assert set(p.ranking) == {"T", "rand", "-T"} and (p.groupby(["ranking", "label"]).size() == 3).all()
    params = json.loads((tmp_path/"ad"/"run.json").read_text())["params"]
    assert params["adaptive"]["budget"] == 20 and params["draws"] == 100
    # the image score is the mean of the map, as in compute_typicality
    row = idx.set_index("rel").loc[recs[0].rel]
    assert abs(row.typicality - load_typicality(tmp_path/"ad", recs[0].rel, size=None).mean()) < 1e-6


def test_deterministic_and_resumable(tmp_path, oracle_model):
    recs = grey_images(tmp_path/"data", n=4)
    a = adaptive_typicality(oracle_model, recs, tmp_path/"one", budget=24, top=2, patch=4, **KW)
    b = adaptive_typicality(oracle_model, recs, tmp_path/"two", budget=24, top=2, patch=4, **KW)
    pd.testing.assert_frame_equal(a.drop(columns="path"), b.drop(columns="path"))
    # an interrupted run: the final maps are gone, the per-stage state is kept -> nothing recomputed, same result
    for f in (tmp_path/"one"/"maps").glob("*.npz"): f.unlink()
    (tmp_path/"one"/"adaptive.csv").unlink()
    oracle_model.unet.inputs = 0
    c = adaptive_typicality(oracle_model, recs, tmp_path/"one", budget=24, top=2, patch=4, **KW)
    assert oracle_model.unet.inputs == 0
    pd.testing.assert_frame_equal(a, c)
    with pytest.raises(Exception, match="other settings"):
        adaptive_typicality(oracle_model, recs, tmp_path/"one", budget=30, top=2, patch=4, **KW)


def test_bad_image_is_recorded_not_fatal(tmp_path, oracle_model):
    recs = grey_images(tmp_path/"data", n=3)
    bad = tmp_path/"data"/"a"/"broken.png"; bad.write_bytes(b"not a png")
    recs.append(Record(path=bad, labels=("a",), rel="a/broken.png"))
    idx = adaptive_typicality(oracle_model, recs, tmp_path/"ad", budget=20, top=2, patch=4, **KW)
    assert "a/broken.png" not in set(idx.rel) and len(idx) == len(recs) - 1
    assert str(bad) in set(pd.read_csv(tmp_path/"ad"/"bad_inputs.csv").path)


def test_later_stages_read_their_images_again(tmp_path, oracle_model, monkeypatch):
    "Latents are not kept between stages: an image that cannot be read at a later stage keeps its earlier stages."
    import diffmine.adaptive as ad
    from diffmine.data import BadImage
    recs = grey_images(tmp_path/"data", n=4)
    reads, load = {}, ad.load_image
    def once(path, *a, **k):
        reads[str(path)] = reads.get(str(path), 0) + 1
        if reads[str(path)] > 1: raise BadImage(path, "gone since stage 0")
        return load(path, *a, **k)
    monkeypatch.setattr(ad, "load_image", once)
    idx = adaptive_typicality(oracle_model, recs, tmp_path/"ad", budget=30, top=2, patch=4, **KW)
    assert len(idx) == len(recs) and set(reads.values()) <= {1, 2}       # every image scored; reread once, not kept
    per, bad = pd.read_csv(tmp_path/"ad"/"adaptive.csv"), pd.read_csv(tmp_path/"ad"/"bad_inputs.csv")
    assert (per.stages == 1).all() and [s["images"] for s in adaptive_cost(tmp_path/"ad")["stages"][1:]] == [0]
    assert len(bad) == sum(v == 2 for v in reads.values()) > 0 and bad.reason.str.startswith("stage 1:").all()


def test_unit_maps_and_standard_errors(tiny_model):
    m = tiny_model
    x0 = torch.randn(1, 3, 16, 16)
    mask = torch.zeros(16, 16, dtype=torch.bool); mask[2:8, 3:11] = True
    m.unet = OracleUNet(m, x0, mask, "")
    t, eps = stage_draws((3, 16, 16), 0, 8, (0.1, 0.7))
    u, per, evals = unit_maps(m, x0, m.conditioning("An image of a."), m.conditioning(""), t, eps, True, batch_size=5)
    assert u.shape == (8, 16, 16) and per.shape == (16,) and evals == 32
    assert sum(len(x) for x, _ in m.unet.calls) == 32
    assert (u.mean(0)[mask.numpy()] > 0.2).all() and np.abs(u[:, ~mask.numpy()]).max() < 1e-6
    # the standard error of the window means shrinks like 1/sqrt(units) (collapsed strata of i.i.d. noise)
    rng = np.random.default_rng(0)
    se = [window_stats([rng.normal(size=(n, 8, 8)).astype(np.float32)], (8, 8), 8)[3][0, 0] for n in (8, 128)]
    assert 2.5 < se[0] / se[1] < 6
    mean, s = image_stats([rng.normal(size=(400, 4, 4)).astype(np.float32)])
    assert abs(mean) < 4 * s and 0.005 < s < 0.02                        # sd of the mean of 6400 N(0,1): 0.0125


def test_cli_adaptive(tmp_path, tiny_model_dir):
    from diffmine.cli import main
    from diffmine.synth import make_planted
    data = make_planted(tmp_path/"data", n_per_label=3, size=16, seed=0)
    model = tiny_model_dir
    main(["typicality", str(model), str(data), str(tmp_path/"run"), "--budget", "16", "--top", "2", "--patch", "4"])
    cost = adaptive_cost(tmp_path/"run")
    assert cost["images"] == 12 and cost["unet_evals"] <= 16 * 12
    assert len(load_index(tmp_path/"run")) == 12 and (tmp_path/"run"/"adaptive.csv").exists()
    main(["mine", str(tmp_path/"run"), "--top", "2", "--patch", "4"])
    assert len(pd.read_csv(tmp_path/"run"/"patches.csv")) == 3 * 4 * 2


def test_topk_overlap_matches_by_iou():
    a = pd.DataFrame(dict(label=["x"] * 3, rel=["1", "2", "3"], x0=[0, 0, 0], y0=[0, 0, 0], x1=[4, 4, 4], y1=[4, 4, 4]))
    b = a.assign(x0=[0, 1, 2], x1=[4, 5, 6])                             # IoU 1, 12/20, 8/24
    r = topk_overlap(a, b)
    assert r["overlap"] == pytest.approx(2 / 3) and r["overlap_exact"] == pytest.approx(1 / 3)
    assert topk_overlap(a, b.assign(rel=["9", "9", "9"]))["overlap"] == 0
