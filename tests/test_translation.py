"Plug-and-Play translation: DDIM round trip, injection hooks, the resumable translate run and its command."
import contextlib, io
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from diffmine.models import small_model, tiny_sd, load_model
from diffmine import translation as tr
from diffmine.cli import main
from diffmine import testing
from diffmine.testing import GaussianDenoiser, noise_images, stable_seed


def hooks(unet): return sum(len(m._forward_hooks) for m in unet.modules())


def test_inversion_then_sampling_reconstructs():
    torch.manual_seed(0)
    m = testing.tiny_model()
    mu = torch.rand(1, 3, 16, 16) * 2 - 1
    x0 = (mu + 0.3 * torch.randn(1, 3, 16, 16)).clamp(-1, 1)
    m.unet = GaussianDenoiser(m.unet, m.scheduler, mu, 0.3)
    errs = {}
    for inv in (50, 500):
        rec = tr.ddim_sample(m, tr.ddim_invert(m, x0, "An image of dots.", 50, inv)[-1:], "An image of dots.", 50, guidance=1.0)
        errs[inv] = float((rec - x0).abs().mean() / x0.abs().mean())
    assert errs[50] < 0.08 and errs[500] < errs[50], errs
    # the inverted latent is noise-like: far from the image, unit scale
    xT = tr.ddim_invert(m, x0, "a", 50)[-1]
    assert 0.5 < float(xT.std()) < 1.5


@pytest.mark.parametrize("kind", ["small", "sd"])
def test_hooks_removed_after_use_and_after_failure(tmp_path, kind):
    m = small_model(32, max_length=8) if kind == "small" else load_model(tiny_sd(tmp_path/"sd"), device="cpu")
    side = 32 if kind == "small" else 64
    x0 = m.encode_images(torch.rand(1, 3, side, side) * 2 - 1)
    before = hooks(m.unet)
    inj = tr.PnPInjection(m.unet)
    assert inj.feature_module is m.unet.up_blocks[1].resnets[1].conv2 and len(inj.attn_modules) == 2
    with inj:
        assert hooks(m.unet) == before + 1 + 4
    assert hooks(m.unet) == before
    y = tr.pnp_translate(m, x0, "An image of dots.", ["An image of dots.", "An image of stars."], steps=4, guidance=2.0)
    assert y.shape == (2, *x0.shape[1:]) and torch.isfinite(y).all()
    assert hooks(m.unet) == before
    calls, forward = {"n": 0}, m.unet.forward
    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6: raise RuntimeError("out of memory (simulated)")
        return forward(*a, **k)
    m.unet.forward = failing
    with pytest.raises(RuntimeError, match="simulated"):
        tr.pnp_translate(m, x0, "An image of dots.", ["An image of stars."], steps=4, guidance=2.0)
    assert hooks(m.unet) == before


def test_source_branch_only_while_injecting():
    "The source latent runs along (batch 1 + 2K) for the first 80% of the steps, then the batch is 2K."
    m = small_model(32, max_length=8)
    seen = []
    h = m.unet.up_blocks[1].resnets[1].register_forward_hook(lambda mod, a, o: seen.append(o.clone()))
    x0 = torch.rand(1, 3, 32, 32) * 2 - 1
    try: tr.pnp_translate(m, x0, "An image of dots.", ["An image of stars."], steps=10, guidance=3.0)
    finally: h.remove()
    sizes = [len(s) for s in seen]
    assert sizes[:10] == [1] * 10                                   # the inversion: one latent
    assert sizes[10:18] == [3] * 8 and sizes[18:] == [2] * 2       # source + (uncond, cond) while injecting, then no source


def _images(folder, labels, n=2, size=16):
    return noise_images(folder, labels, n, (size, size), seed=lambda lab, i, k: stable_seed(lab, i))


def test_translate_is_resumable_per_pair(tmp_path, monkeypatch):
    recs = _images(tmp_path/"data", ["dots", "stars"])
    m = testing.tiny_model()
    real, calls = tr.pnp_translate, {"n": 0}
    def dies_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3: raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(tr, "pnp_translate", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        tr.translate_dataset(m, recs, tmp_path/"run", steps=3, guidance=2.0, targets_per_batch=1)
    done = sorted((tmp_path/"run").rglob("*.png"))
    assert len(done) == 2                                             # two pairs finished before the interruption
    assert not list((tmp_path/"run").rglob("*.tmp"))
    stamps = {p: p.stat().st_mtime_ns for p in done}
    monkeypatch.setattr(tr, "pnp_translate", real)
    calls["n"] = 0
    counted = {"n": 0}
    def counting(*a, **k): counted["n"] += 1; return real(*a, **k)
    monkeypatch.setattr(tr, "pnp_translate", counting)
    man = tr.translate_dataset(m, recs, tmp_path/"run", steps=3, guidance=2.0, targets_per_batch=1)
    assert counted["n"] == 4 * 2 - 2                                  # only the missing pairs
    assert {p: p.stat().st_mtime_ns for p in done} == stamps
    assert len(man) == 8 and set(man.columns) == set(tr.MANIFEST_COLUMNS)
    assert (man.groupby("source_key").target_label.nunique() == 2).all()
    # deterministic: a fresh run with the same settings gives the same images (a different targets_per_batch changes the
    # float32 rounding of the batched UNet, which this untrained model amplifies; not compared bit for bit)
    tr.translate_dataset(m, recs, tmp_path/"run2", steps=3, guidance=2.0, targets_per_batch=1)
    for f in man.file:
        assert np.array_equal(np.asarray(Image.open(tmp_path/"run"/f)), np.asarray(Image.open(tmp_path/"run2"/f)))


def test_translate_command(tmp_path, tiny_model_dir):
    _images(tmp_path/"data", ["dots", "stars"], n=1)
    args = ["translate", str(tmp_path/"model"), str(tmp_path/"data"), str(tmp_path/"out"), "--steps", "3",
            "--guidance", "2", "--labels", "dots", "stars", "moons"]
    with contextlib.redirect_stdout(io.StringIO()) as f: main(args)
    assert "6 translations of 2 images to 3 labels" in f.getvalue()
    man = pd.read_csv(tmp_path/"out"/"manifest.csv")
    assert len(man) == 6 and all((tmp_path/"out"/p).exists() for p in man.file)
    with contextlib.redirect_stdout(io.StringIO()) as f: main(args)        # nothing left to do
    assert "6 translations" in f.getvalue()
    with contextlib.redirect_stderr(io.StringIO()) as f, pytest.raises(SystemExit) as e:
        main(args[:-6] + ["--guidance", "3"])
    assert e.value.code == 2 and "other settings" in f.getvalue()


def test_translation_figure_draws_labels_in_any_script(tmp_path):
    "Fig. 10's column titles are labels: a country named in Japanese is drawn in a font that has it, never as boxes."
    from diffmine.translation import translate_dataset, compute_cotypicality, cotypical_clusters
    from diffmine.figures import translation_figure, drawable, label_fonts
    recs = _images(tmp_path/"data", ["dots", "日本"], n=2)
    m = testing.tiny_model()
    translate_dataset(m, recs, tmp_path/"run", steps=3, guidance=2.0)
    compute_cotypicality(m, tmp_path/"run", n=2)
    cotypical_clusters(m, tmp_path/"run", k=2, patch=4, ensemble=1, reduce="pca")
    fig = translation_figure(tmp_path/"run", n_clusters=2, rows_per_cluster=2)
    assert len(fig.axes) == 4 * 2
    top = fig.axes[:2]
    assert [a.get_title() for a in top] == ["dots", drawable("日本")]
    if len(label_fonts()) > 1:                                  # a CJK font is installed (make install adds one)
        assert top[1].get_title() == "日本" and len(top[1].title.get_fontfamily()) > 1


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_ddim_equals_diffusers_schedulers_where_they_apply(prediction):
    """The hand-written DDIM (float64 updates; inversion on any grid, the union of the sampling and the inversion
    timesteps) equals diffusers' DDIMScheduler and DDIMInverseScheduler on the uniform grids those two support. Under
    v-prediction the inversion differs on purpose: the UNet, told timestep t, predicts v for noise level t, so diffmine
    converts v to noise at level t; DDIMInverseScheduler converts it at the level of the latent it was given."""
    from diffusers import DDIMScheduler, DDIMInverseScheduler
    m = testing.tiny_model()
    m.scheduler.register_to_config(prediction_type=prediction, steps_offset=1)
    x0 = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    cond, steps = m.conditioning("An image of dots."), 10
    kw = dict(clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading", steps_offset=1, prediction_type=prediction)
    inv = DDIMInverseScheduler.from_config(m.scheduler.config, **kw); inv.set_timesteps(steps)
    x, want_inv = x0.clone(), []
    with torch.no_grad():
        for t in inv.timesteps:
            x = inv.step(m.unet(x, t.expand(1), **cond).sample, t, x).prev_sample; want_inv.append(x[0])
    got_inv = tr.ddim_invert(m, x0, "An image of dots.", steps)
    if prediction == "epsilon": torch.testing.assert_close(got_inv, torch.stack(want_inv), rtol=1e-4, atol=1e-5)
    fwd = DDIMScheduler.from_config(m.scheduler.config, **kw); fwd.set_timesteps(steps)
    x = got_inv[-1:].clone()
    with torch.no_grad():
        for t in fwd.timesteps: x = fwd.step(m.unet(x, t.expand(1), **cond).sample, t, x, eta=0.0).prev_sample
    got = tr.ddim_sample(m, got_inv[-1:], "An image of dots.", steps, guidance=1.0)
    torch.testing.assert_close(got, x, rtol=1e-4, atol=1e-5)
