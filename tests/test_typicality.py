"""The typicality engine: an oracle UNet that is right only inside a mask, paired draws, determinism, batch-size
invariance, the latent path through a tiny Stable Diffusion, caching and bad images."""
import numpy as np, pandas as pd, pytest, torch

from diffmine.data import Record, BadInputs
from diffmine.models import load_model, tiny_sd
from diffmine.typicality import typicality_map, compute_typicality, draws
from diffmine.runfolder import load_typicality, load_index, image_key
from diffmine import testing
from diffmine.testing import OracleUNet, noise_images


@pytest.fixture(scope="module")
def model():
    return testing.tiny_model()


def _images(root, n=4, size=(24, 16)):
    return noise_images(root, ["a", "b"] * (n // 2) + ["a"] * (n % 2), size=size, ints=True, numbering="all")


def test_oracle_map_is_positive_exactly_inside_the_mask(model, tiny_model):
    m = tiny_model
    x0 = torch.randn(1, 3, 16, 16)
    mask = torch.zeros(16, 16, dtype=torch.bool); mask[3:9, 5:13] = True
    m.unet = OracleUNet(m, x0, mask, "")
    tmap, per = typicality_map(m, x0, "An image of a.", "", n=16, batch_size=5)
    assert (tmap[mask] > 0.05).all()
    assert tmap[~mask].abs().max() < 1e-6
    # the expected value inside is E[eps^2] = 1 (the null prediction is 0, the conditional one exact)
    assert abs(tmap[mask].mean().item() - 1.0) < 0.15
    # conditional and null halves of every call see identical inputs and timesteps
    for x, t in m.unet.calls:
        b = len(t) // 2
        assert torch.equal(x[:b], x[b:]) and torch.equal(t[:b], t[b:])
    assert sum(len(t) for _, t in m.unet.calls) == 2 * 16      # 2N UNet evaluations


def test_swapping_prompts_flips_the_sign(model):
    x0 = torch.randn(1, 3, 16, 16)
    a, _ = typicality_map(model, x0, "An image of a.", "", n=8)
    b, _ = typicality_map(model, x0, "", "An image of a.", n=8)
    assert torch.allclose(a, -b, atol=1e-5)


def test_same_seed_bit_identical_and_batch_size_invariant(model, tmp_path):
    x0 = torch.randn(1, 3, 16, 16)
    a, pa = typicality_map(model, x0, "An image of a.", "", n=12, batch_size=12, seed=3)
    b, pb = typicality_map(model, x0, "An image of a.", "", n=12, batch_size=12, seed=3)
    assert torch.equal(a, b) and torch.equal(pa, pb)
    c, pc = typicality_map(model, x0, "An image of a.", "", n=12, batch_size=5, seed=3)
    assert torch.allclose(a, c, atol=1e-5, rtol=1e-4)
    d, _ = typicality_map(model, x0, "An image of a.", "", n=12, batch_size=12, seed=4)
    assert not torch.allclose(a, d)


def test_t_range_respected():
    t, _ = draws((1, 2, 2), 1000, (0.1, 0.7))
    assert t.min() >= 100 and t.max() <= 699 and len(set(t.tolist())) > 400
    t, _ = draws((1, 2, 2), 1000, (0.0, 1.0))
    assert t.min() >= 0 and t.max() <= 999 and t.max() > 900


def test_run_folder_cached_resumable_and_bad_images_reported(model, tmp_path):
    recs = _images(tmp_path/"data")
    bad = tmp_path/"data"/"a"/"broken.png"; bad.write_bytes(b"not a png")
    recs.append(Record(path=bad, labels=("a",), rel="a/broken.png"))
    report = BadInputs()
    idx = compute_typicality(model, recs, tmp_path/"run", n=4, template="An image of {label}.", null_prompt="", report=report)
    assert len(idx) == 4 and set(idx.label) == {"a", "b"}
    rep = pd.read_csv(tmp_path/"run"/"bad_inputs.csv")
    assert rep.path.str.endswith("broken.png").tolist() == [True]
    m = load_typicality(tmp_path/"run", "a/0.png")
    assert m.shape == (16, 24)                                   # the original image size
    assert load_typicality(tmp_path/"run", "a/0.png", size=None).shape == (16, 24)   # UNet resolution = 16 short side
    # resume: delete one cached map; only that one is recomputed, and it is bit-identical
    f = tmp_path/"run"/"maps"/f"{image_key('b/1.png')}.npz"
    before = np.load(f)["map"].copy(); others = {p.name: p.stat().st_mtime_ns for p in f.parent.glob("*.npz") if p != f}
    f.unlink()
    compute_typicality(model, recs, tmp_path/"run", n=4, template="An image of {label}.", null_prompt="")
    assert np.array_equal(np.load(f)["map"], before)
    assert others == {p.name: p.stat().st_mtime_ns for p in f.parent.glob("*.npz") if p != f}
    assert len(load_index(tmp_path/"run")) == 4


def test_latent_path_through_a_tiny_stable_diffusion(tmp_path):
    folder = tiny_sd(tmp_path/"tiny-sd")
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder/part).is_dir()
    sd = load_model(folder, device="cpu")
    assert type(sd.text_encoder).__name__ == "CLIPTextModel" and sd.vae is not None
    recs = _images(tmp_path/"data", n=2, size=(80, 64))
    idx = compute_typicality(sd, recs, tmp_path/"run", n=4, template="A car from the {decade}s.", null_prompt="A car.")
    assert idx.prompt.tolist() == ["A car from the as.", "A car from the bs."]
    m = load_typicality(tmp_path/"run", "a/0.png")
    assert m.shape == (64, 80) and np.isfinite(m).all() and np.abs(m).sum() > 0
    # the cached map is at the latent resolution: 64 px short side -> 8 latent cells (VAE factor 8)
    assert load_typicality(tmp_path/"run", "a/0.png", size=None).shape == (8, 10)


def test_a_run_folder_never_reuses_maps_of_other_image_files(model, tmp_path):
    "Two datasets with the same relative names into one run folder: the second is refused, not given the first's maps."
    first, second = _images(tmp_path/"one"), _images(tmp_path/"two")
    compute_typicality(model, first, tmp_path/"run", n=2, template="{label}", null_prompt="")
    before = {f.name: f.read_bytes() for f in (tmp_path/"run"/"maps").iterdir()}
    run_json = (tmp_path/"run"/"run.json").read_bytes()
    with pytest.raises(Exception, match="maps of other image files under the same names") as e:
        compute_typicality(model, second, tmp_path/"run", n=2, template="{label}", null_prompt="")
    assert str(second[0].path) in str(e.value) and "and 3 more" in str(e.value)
    assert {f.name: f.read_bytes() for f in (tmp_path/"run"/"maps").iterdir()} == before     # nothing rewritten
    assert (tmp_path/"run"/"run.json").read_bytes() == run_json
    assert len(compute_typicality(model, first[:3] + first[3:], tmp_path/"run", n=2, template="{label}", null_prompt="")) == 4


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_the_estimator_equals_the_formulas_written_out(prediction):
    "T through the scheduler's add_noise / get_velocity equals sqrt(abar) x0 + sqrt(1 - abar) eps and the v target by hand."
    from diffmine.models import repeat_conditioning, cat_conditioning
    from diffmine.typicality import label_typicality
    m = testing.tiny_model()
    m.scheduler.register_to_config(prediction_type=prediction)
    x0 = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t_all, eps_all = draws((3, 16, 16), 6)
    a = m.scheduler.alphas_cumprod.float()[t_all].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps_all
    target = a.sqrt() * eps_all - (1 - a).sqrt() * x0 if prediction == "v_prediction" else eps_all
    kw = cat_conditioning(repeat_conditioning(m.conditioning("a cat"), 6), repeat_conditioning(m.conditioning(""), 6))
    with torch.no_grad(): pred = m.unet(torch.cat([xt, xt]), torch.cat([t_all, t_all]), **kw).sample
    err = (pred - torch.cat([target, target])).pow(2).mean(1)
    want = (err[6:] - err[:6]).mean(0)
    got, per_draw = typicality_map(m, x0, "a cat", "", n=6, batch_size=4)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(per_draw, (err[6:] - err[:6]).mean((1, 2)), rtol=1e-5, atol=1e-6)
    image_level, used = label_typicality(m, x0, ["a cat"], "", n=6, batch_size=4)
    torch.testing.assert_close(image_level[0], want.mean(), rtol=1e-4, atol=1e-7)
