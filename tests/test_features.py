"""DIFT features and clusters: the truncated forward (shapes on the latent and the pixel path, hook hygiene, no wasted
blocks), the per-image cache (resume, bit-identical recompute, parameters and prompts checked), the crop of patch boxes,
the cluster ranking, and a whole run from a typicality folder to clusters.csv."""
import json

import numpy as np, pandas as pd, pytest, torch
from PIL import Image

from diffmine.config import DiffmineError, format_prompt, save_npz, write_json
from diffmine.models import small_model, load_model, tiny_sd, image_tensor, repeat_conditioning
from diffmine.runfolder import RunFolder, image_key
from diffmine.features import (dift_features, compute_features, patch_descriptors, _block_output, _box_cells)
from diffmine.clusters import cluster_patches, cluster_run, load_clusters, CLUSTER_COLUMNS
from diffmine import testing
from diffmine.testing import noise_pixels, write_image

TEMPLATE = "An image of {label}."


@pytest.fixture(scope="module")
def model():
    m = testing.tiny_model()
    m.spec["template"] = TEMPLATE
    return m


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return load_model(tiny_sd(tmp_path_factory.mktemp("sd")/"tiny-sd"), device="cpu")


def _fake_run(root, n=4, size=(24, 16), template=TEMPLATE):
    "A typicality run folder written by hand: real PNGs, maps/*.npz, index.csv, run.json."
    run = root/"run"
    for i in range(n):
        lab = ["a", "b"][i % 2]
        rel = f"{lab}/{i}.png"
        p = write_image(root/"data"/rel, noise_pixels(i, size, ints=True))
        tmap = np.full((size[1], size[0]), 0.1 * i, np.float32)
        save_npz(run/"maps"/f"{image_key(rel)}.npz",
                 dict(map=tmap, size=np.array(size[::-1]), per_draw=np.zeros(2, np.float32), rel=rel, label=lab,
                      prompt=format_prompt(template, lab), path=str(p)))
    write_json(run/"run.json", {"params": {"template": template}})
    return run, RunFolder(run).write_index()


# ---------------------------------------------------------------------------------------------- the truncated forward

def test_dift_on_tiny_sd_latent_path(sd):
    z = sd.encode_images(image_tensor(Image.new("RGB", (96, 64), (20, 90, 200)), 64, sd.size_multiple)[None])
    assert z.shape == (1, 4, 8, 12)                          # 64 x 96 px / the VAE's 8
    f = dift_features(sd, z, "A car from the 1950s.")
    assert f.shape == (32, 8, 12) and f.dtype == torch.float32 and torch.isfinite(f).all()
    f0 = dift_features(sd, z, "A car from the 1950s.", up_block=0, ensemble=2)
    assert f0.shape == (64, 8, 12)                           # up_blocks[0] works at 4 x 6 and upsamples
    assert torch.equal(dift_features(sd, z, "A car from the 1950s.", up_block=0, ensemble=2), f0)   # seeded


def test_dift_on_small_pixel_model_and_seed():
    m = small_model(32)                                      # default widths (16, 32, 64)
    x0 = torch.randn(1, 3, 32, 48)
    f = dift_features(m, x0, "An image of dots.")
    assert f.shape == (32, 32, 48) and torch.isfinite(f).all()   # up_blocks[1]: 32 ch, upsampled back to full size
    assert dift_features(m, x0, "An image of dots.", up_block=0, ensemble=2).shape == (64, 16, 24)
    f2 = dift_features(m, x0, "An image of dots.", ensemble=2)
    assert torch.equal(dift_features(m, x0, "An image of dots.", ensemble=2), f2)  # seeded ensemble
    assert not torch.allclose(dift_features(m, x0, "An image of dots.", ensemble=2, seed=1), f2)
    assert not torch.allclose(dift_features(m, x0, "An image of lines.", ensemble=2), f2)   # the prompt matters


def test_truncated_equals_full_forward_and_skips_later_blocks(model):
    x, t = torch.randn(3, 3, 16, 16), torch.full((3,), 161)
    c = repeat_conditioning(model.conditioning("An image of a."), 3)
    full, later = {}, []
    h1 = model.unet.up_blocks[0].register_forward_hook(lambda m, a, o: full.setdefault("o", o))
    with torch.no_grad(): model.unet(x, t, **c)
    h1.remove()
    h2 = model.unet.up_blocks[1].register_forward_pre_hook(lambda m, a: later.append(1))
    h3 = model.unet.conv_out.register_forward_pre_hook(lambda m, a: later.append(2))
    try:
        with torch.no_grad(): out = _block_output(model.unet, 0, x, t, **c)
    finally: h2.remove(); h3.remove()
    assert torch.allclose(out, full["o"], atol=1e-6)
    assert later == []                                       # nothing after the wanted block ran


def test_hook_removed_even_if_the_unet_raises(model):
    blk = model.unet.up_blocks[1]
    n = len(blk._forward_hooks)
    def boom(m, a): raise RuntimeError("broken block")
    for where in (model.unet.up_blocks[0], blk):             # failing before, and inside, the hooked block
        h = where.register_forward_pre_hook(boom)
        try:
            with pytest.raises(RuntimeError, match="broken block"):
                dift_features(model, torch.randn(1, 3, 16, 16), "An image of a.", ensemble=2)
        finally: h.remove()
        assert len(blk._forward_hooks) == n
    dift_features(model, torch.randn(1, 3, 16, 16), "An image of a.", ensemble=2)
    assert len(blk._forward_hooks) == n


# ------------------------------------------------------------------------------------------------ the per-image cache

def test_cache_resume_bit_identical(model, tmp_path):
    run, idx = _fake_run(tmp_path, n=3)
    out = compute_features(model, run, ensemble=2)
    files = sorted(out.glob("*.npz"))
    assert [f.stem for f in files] == sorted(idx.key)
    before = {f.name: (f.stat().st_mtime_ns, np.load(f)["features"]) for f in files}
    with np.load(files[0]) as z:
        assert z["features"].dtype == np.float16 and z["features"].shape == (8, 16, 24) and z["size"].tolist() == [16, 24]
    files[1].unlink()
    compute_features(model, run, ensemble=2)
    for f in sorted(out.glob("*.npz")):
        t, a = before[f.name]
        assert np.array_equal(np.load(f)["features"], a)    # bit-identical
        assert (f.stat().st_mtime_ns == t) == (f != files[1])  # only the deleted one was recomputed
    assert json.loads((out/"params.json").read_text())["ensemble"] == 2


def test_params_template_and_keys_checked(model, tmp_path):
    run, idx = _fake_run(tmp_path)
    compute_features(model, run, keys=idx.key[:1], ensemble=2)
    assert len(list((run/"features").glob("*.npz"))) == 1        # only the requested key
    with pytest.raises(DiffmineError, match="other settings"): compute_features(model, run, ensemble=3)
    with pytest.raises(DiffmineError, match="other settings"): compute_features(model, run, ensemble=2, t=261)
    with pytest.raises(DiffmineError, match="not in the index"): compute_features(model, run, keys=["nope"], ensemble=2)
    other = testing.tiny_model(); other.spec["template"] = "A photo of {label}."
    with pytest.raises(DiffmineError, match="trained with 'A photo of"): compute_features(other, run, ensemble=2)


def test_bad_image_reported_not_fatal(model, tmp_path):
    run, idx = _fake_run(tmp_path, n=2)
    bad = idx.path[0]; open(bad, "wb").write(b"not a png")
    compute_features(model, run, ensemble=2)
    rep = pd.read_csv(run/"features"/"bad_inputs.csv")
    assert rep.path.tolist() == [bad] and len(list((run/"features").glob("*.npz"))) == len(idx) - 1


# ------------------------------------------------------------------------------------------------ patch descriptors

def test_box_cells_are_exactly_the_cells_a_box_touches():
    rng = np.random.default_rng(0)
    for _ in range(300):
        H, W = rng.integers(8, 200, 2); h, w = rng.integers(1, 20, 2)
        x0, x1 = np.sort(rng.integers(0, W + 1, 2)); y0, y1 = np.sort(rng.integers(0, H + 1, 2))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        cx0, cy0, cx1, cy1 = _box_cells(int(x0), int(y0), int(x1), int(y1), int(H), int(W), int(h), int(w))
        touch = lambda a, b, n, N: [j for j in range(n) if j * N < b * n and (j + 1) * N > a * n]   # cell j: [jN/n, (j+1)N/n)
        tx, ty = touch(x0, x1, w, W), touch(y0, y1, h, H)
        assert list(range(cx0, cx1)) == (tx or [min(w - 1, x0 * w // W)])
        assert list(range(cy0, cy1)) == (ty or [min(h - 1, y0 * h // H)])


def test_descriptors_unit_norm_and_located(tmp_path):
    H, W, h, w = 32, 48, 4, 6                                # non-square image, 8 px per cell
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    save_npz(tmp_path/"features"/"k1.npz", dict(features=np.stack([xx, yy, np.ones_like(xx)]), size=np.array([H, W])))
    save_npz(tmp_path/"features"/"k2.npz", dict(features=np.stack([np.ones_like(xx), xx, yy]), size=np.array([H, W])))
    p = pd.DataFrame(dict(key=["k1", "k2", "k1", "k1"], x0=[0, 0, 40, 9], y0=[0, 0, 24, 9], x1=[8, 8, 48, 23],
                          y1=[8, 8, 32, 15]))
    d = patch_descriptors(tmp_path, p)
    assert d.shape == (4, 3) and d.dtype == np.float32
    assert np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-6)
    assert np.allclose(d[0], [0, 0, 1]) and np.allclose(d[1], [1, 0, 0])          # rows keep their own image
    assert np.allclose(d[2] / d[2, 2], [5, 3, 1])                                   # bottom-right cell
    assert np.allclose(d[3] / d[3, 2], [1.5, 1, 1])                                 # x cells 1-2, y cell 1
    with pytest.raises(DiffmineError, match="compute them first: `diffmine cluster "):
        patch_descriptors(tmp_path, p.assign(key="k3"))


# ------------------------------------------------------------------------------------------------------------ clusters

def test_clusters_ranked_by_median_members_nearest_first():
    rng = np.random.default_rng(1)
    centres = np.eye(3) * 10
    X = np.concatenate([c + rng.normal(0, 0.5, (6, 3)) for c in centres])
    # means would rank blob 0 first (an outlier of 9) and blob 1 last (an outlier of -9); medians: 1 > 2 > 0
    typ = np.concatenate([[0, 0, 0, 0, 0, 9.], [2, 2, 2, 2, 2, -9], [1, 1, 1, 1, 1, 1]])
    p = pd.DataFrame(dict(key=[f"p{i:02d}" for i in range(18)], label="x", typicality=typ))
    c = cluster_patches(p, X, k=3, seed=0)
    blob = c.key.str[1:].astype(int) // 6
    assert [set(blob[c.cluster_rank == r]) for r in (1, 2, 3)] == [{1}, {2}, {0}]
    assert np.allclose(c.groupby("cluster_rank").cluster_median.first(), [2, 1, 0])
    for _, g in c.groupby("cluster_rank"):
        assert g.member_rank.tolist() == list(range(1, 7))
        centroid = X[g.key.str[1:].astype(int)].mean(0)
        true = np.linalg.norm(X[g.key.str[1:].astype(int)] - centroid, axis=1)
        assert np.allclose(g.distance, true, atol=1e-6) and np.all(np.diff(g.distance) >= 0)
    # k larger than the patches, labels independent, deterministic
    q = pd.DataFrame(dict(key=["a", "b", "c"], label="y", typicality=[1., 2, 3]))
    cq = cluster_patches(q, np.array([[1., 0, 0], [1, 0, 0], [0, 1, 0]]), k=32)
    assert cq.cluster_rank.tolist() == [1, 2, 2] and cq.key.tolist() == ["c", "a", "b"] and cq.cluster_size.tolist() == [1, 2, 2]
    both = cluster_patches(pd.concat([p, q]), np.concatenate([X, [[1., 0, 0], [1, 0, 0], [0, 1, 0]]]), k=3, seed=0)
    cols = ["key", "cluster", "cluster_rank", "member_rank"]
    assert both[both.label == "x"][cols].reset_index(drop=True).equals(c[cols])
    assert cluster_patches(p, X, k=3, seed=7).equals(cluster_patches(p, X, k=3, seed=7))


# ---------------------------------------------------------------------------------------------------------- end to end

def test_cluster_run_end_to_end(model, tmp_path):
    run, idx = _fake_run(tmp_path, n=4)
    rows = [dict(key=r.key, rel=r.rel, path=r.path, label=r.label, x0=x, y0=y, x1=x + 8, y1=y + 8,
                 typicality=r.typicality + 0.01 * j, rank=j + 1, ranking=rk)
            for r in idx.itertuples() for j, (x, y) in enumerate([(0, 0), (16, 8), (8, 4)]) for rk in ("T", "rand", "-T")]
    pd.DataFrame(rows).to_csv(run/"patches.csv", index=False)
    cl = cluster_run(model, run, k=3, ensemble=2)
    assert (run/"clusters.csv").exists()
    assert list(cl.columns) == ["key", "rel", "path", "label", "x0", "y0", "x1", "y1", "typicality", "rank",
                                "ranking"] + CLUSTER_COLUMNS
    assert len(cl) == 4 * 3 and set(cl.ranking) == {"T"}
    for lab, g in cl.groupby("label"):
        assert sorted(g.cluster_rank.unique()) == list(range(1, g.cluster_rank.max() + 1)) and g.cluster_rank.max() == 3
        assert g.groupby("cluster_rank").size().tolist() == g.groupby("cluster_rank").cluster_size.first().tolist()
    # only the images with patches of the ranking got features; the table reads back the same
    assert sorted(p.stem for p in (run/"features").glob("*.npz")) == sorted(idx.key)
    back = load_clusters(run)
    assert back.label.tolist() == cl.label.tolist() and back.cluster_rank.tolist() == cl.cluster_rank.tolist()
    # a second run reuses the cached features: same table
    assert cluster_run(model, run, k=3, ensemble=2).equals(cl)
    with pytest.raises(DiffmineError, match="rankings here"): cluster_run(model, run, ranking="X", ensemble=2)
