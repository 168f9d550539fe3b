"""diffmine-base, the committed pretrained model: it loads like Stable Diffusion, it is small, its model card tells the
truth, and (slow) the pretraining command reproduces the first losses of its committed logs from nothing."""
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from diffmine.models import load_model, BASE_MODEL, BASE_NAME, MINILM_PACKAGE
from diffmine.pretrain import (BASE_RESOLUTION, BASE_T_RANGE, BASE_TRAIN, BASE_SEED, pretraining_mixture, train_vae, base_unet,
                               reconstruction_psnr, SKIMAGE_WHEEL, EMOJI_PACKAGE)

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT/"runs"/"base-model"/"sources"

def test_committed_folder_is_small_and_complete():
    files = [p for p in BASE_MODEL.rglob("*") if p.is_file()]
    weights = sum(p.stat().st_size for p in files if p.suffix == ".safetensors")
    assert weights < 25e6, weights
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "scheduler/scheduler_config.json", "tokenizer/tokenizer_config.json", "diffmine.json", "README.md",
                 "model_card.json", "loss_curves.png", "vae_log.csv", "train_log.csv"):
        assert (BASE_MODEL/part).is_file(), part
    assert not (BASE_MODEL/"text_encoder").exists()          # the MiniLM package provides it

def test_committed_model_loads_like_stable_diffusion():
    m = load_model(BASE_NAME, device="cpu")
    assert m.spec["text_encoder"] == MINILM_PACKAGE and m.resolution == BASE_RESOLUTION
    assert tuple(m.spec["t_range"]) == BASE_T_RANGE              # its mining t-range, inherited by every finetune
    assert m.unet.dtype == torch.float32 and m.vae is not None and m.latent_factor == 8
    cfg = m.scheduler.config
    assert (cfg.beta_schedule, cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps) == ("scaled_linear", 0.00085, 0.012, 1000)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    lat = m.encode_images(x)
    assert lat.shape == (2, 8, 16, 16)
    eps = m.unet(lat, torch.tensor([500, 500]), **m.conditioning(["A car.", ""])).sample
    assert eps.shape == lat.shape and torch.isfinite(eps).all()

def test_model_card_matches_its_logs():
    card = json.loads((BASE_MODEL/"model_card.json").read_text())
    log = pd.read_csv(BASE_MODEL/"train_log.csv")
    assert int(log.step.iloc[-1]) == card["steps"] and len(log) == card["steps"]
    assert abs(float(log.loss.tail(200).mean()) - card["final_loss"]) < 1e-9
    text = (BASE_MODEL/"README.md").read_text()
    assert f"{card['psnr']['all']}" in text and f"{card['final_loss']:.4f}" in text
    assert log.loss.tail(200).mean() < 0.7 * log.loss.head(200).mean()     # it learned something

def test_reconstructions_of_the_demo_world(tmp_path):
    "The autoencoder keeps the demo's planted elements: PSNR on a fresh stand-in (the demo's own seed, unseen)."
    from diffmine.synth import make_standin
    from diffmine.data import load_records
    m = load_model(BASE_NAME, device="cpu")
    root = make_standin("cars", tmp_path/"cars", n_per_label=2, size=128, seed=0)
    recs = [r for r in load_records(root)]
    for r in recs: r.meta["source"] = "cars"
    assert reconstruction_psnr(m.vae, recs, per_source=16)["all"] > 18     # 20.5 dB over the pretraining cars (model card)

def _sources():
    wheel = sorted(SOURCES.glob("scikit_image-0.26.0-*.whl"))
    tgz = SOURCES/"emoji-datasource-google-16.0.0.tgz"
    if not wheel or not tgz.exists():
        pytest.skip(f"the pretraining sources are not downloaded: run `make base-model-sources` ({SKIMAGE_WHEEL}, {EMOJI_PACKAGE})")
    return wheel[0], tgz

@pytest.mark.slow
def test_pretraining_reproduces_the_first_committed_losses(tmp_path):
    "From nothing: the mixture, 3 autoencoder steps and 3 UNet steps give the committed logs' first losses."
    from transformers import AutoModel, AutoTokenizer
    from diffmine.models import DiffusionModel, sd_scheduler, minilm_path
    from diffmine.finetune import finetune
    wheel, tgz = _sources()
    recs = pretraining_mixture(tmp_path/"data", photos=wheel, emoji=tgz, seed=BASE_SEED)
    card = json.loads((BASE_MODEL/"model_card.json").read_text())
    assert len(recs) == sum(card["images"].values())
    train_vae(recs, tmp_path/"vae-run", steps=3, batch_size=BASE_TRAIN["vae_batch"], lr=BASE_TRAIN["vae_lr"], seed=BASE_SEED)
    ours, theirs = pd.read_csv(tmp_path/"vae-run/vae_log.csv"), pd.read_csv(BASE_MODEL/"vae_log.csv").head(3)
    # the first loss is the same to the digit; after an optimiser step the CPU's kernels show in the 4th digit (on
    # 2026-12-05 another machine of this project gave 1.348588 for the committed 1.348453): 1e-3 still tells a
    # different mixture, seed or recipe apart (they change the first loss already)
    np.testing.assert_allclose(ours.loss.iloc[0], theirs.loss.iloc[0], rtol=1e-4)
    np.testing.assert_allclose(ours.loss, theirs.loss, rtol=1e-3)
    committed = load_model(BASE_NAME, device="cpu")
    te = minilm_path()
    model = DiffusionModel(base_unet(BASE_SEED), sd_scheduler(), AutoModel.from_pretrained(te), AutoTokenizer.from_pretrained(te),
                           committed.vae, {"resolution": BASE_RESOLUTION, "max_length": 20})
    finetune(recs, tmp_path/"unet-run", "{label}", "", base=model, resolution=BASE_RESOLUTION, steps=3,
             batch_size=BASE_TRAIN["batch_size"], lr=BASE_TRAIN["lr"], cond_dropout=BASE_TRAIN["cond_dropout"], ema=True,
             checkpoint_every=250, seed=BASE_SEED)
    ours, theirs = pd.read_csv(tmp_path/"unet-run/train_log.csv"), pd.read_csv(BASE_MODEL/"train_log.csv").head(3)
    np.testing.assert_allclose(ours.loss.iloc[0], theirs.loss.iloc[0], rtol=1e-4)
    np.testing.assert_allclose(ours.loss, theirs.loss, rtol=1e-3)
