"""The pipeline on a model with Stable Diffusion 1.5's exact structure: `sd15_tiny` writes 4 down / 4 up blocks with cross-attention in three, a 4-level AutoencoderKL with
scaling factor 0.18215, SD's PNDM scheduler config, the real CLIP BPE tokenizer and a model_index.json, and no
diffmine.json, as the hub folder of SD 1.5 is. Typicality, mining, DIFT, clustering, Plug-and-Play translation and
co-typicality then run on it at smoke size (64 px images, 2 draws)."""
import json
from pathlib import Path

import numpy as np
import pytest

from diffmine.testing import noise_images
from diffmine.models import load_model, sd15_tiny, clip_bpe_file


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    try: clip_bpe_file()
    except Exception as e: pytest.skip(f"CLIP's BPE merges cannot be had here: {e}")
    return sd15_tiny(tmp_path_factory.mktemp("sd15")/"model", sample_size=8)     # 64 px: quick


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return noise_images(tmp_path_factory.mktemp("data"), ["dots", "dots", "stars", "stars"], size=(64, 64), numbering="all")


def test_the_folder_is_shaped_like_sd15(sd15):
    cfg = json.loads((sd15/"unet"/"config.json").read_text())
    assert cfg["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert cfg["up_block_types"] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3 and cfg["layers_per_block"] == 2
    vae = json.loads((sd15/"vae"/"config.json").read_text())
    assert len(vae["block_out_channels"]) == 4 and vae["scaling_factor"] == 0.18215
    sch = json.loads((sd15/"scheduler"/"scheduler_config.json").read_text())
    assert sch["_class_name"] == "PNDMScheduler" and sch["steps_offset"] == 1 and sch["skip_prk_steps"]
    assert json.loads((sd15/"model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    assert not (sd15/"diffmine.json").exists()
    m = load_model(sd15, device="cpu")
    assert type(m.scheduler).__name__ == "DDPMScheduler" and m.scheduler.config.steps_offset == 1
    assert len(m.tokenizer) == 49408 and m.tokenizer("a car")["input_ids"] == [49406, 320, 1615, 49407]
    from diffusers import StableDiffusionPipeline
    StableDiffusionPipeline.from_pretrained(sd15, safety_checker=None)


def test_typicality_mining_dift_and_clusters(sd15, records, tmp_path):
    from diffmine.typicality import compute_typicality
    from diffmine.patches import mine_patches
    from diffmine.clusters import cluster_run
    m = load_model(sd15, device="cpu")
    idx = compute_typicality(m, records, tmp_path/"run", n=2)
    assert len(idx) == 4 and np.isfinite(idx.typicality).all()
    p = mine_patches(tmp_path/"run", patch=16, top=None)
    assert set(p.ranking) == {"T", "rand", "-T"} and set(p.x1 - p.x0) == {16}
    c = cluster_run(m, tmp_path/"run", k=2, ensemble=1)
    assert len(c) and set(c.label) == {"dots", "stars"}
    with np.load(next((tmp_path/"run"/"features").glob("*.npz"))) as z:
        feats = z["features"]
    assert feats.shape[0] == 16                        # up_blocks[1] output: the UNet's last width (SD 1.5: 1280)


def test_translation_and_cotypicality(sd15, records, tmp_path):
    from diffmine.translation import (translate_dataset, compute_cotypicality, cotypical_clusters, PnPInjection,
                                      default_feature_layer, decoder_self_attention)
    m = load_model(sd15, device="cpu")
    assert default_feature_layer(m.unet) == (1, 1) and len(decoder_self_attention(m.unet)) == 9
    inj = PnPInjection(m.unet)
    assert inj.feature_module is m.unet.up_blocks[1].resnets[1].conv2 and len(inj.attn_modules) == 8
    man = translate_dataset(m, records[::2], tmp_path/"tr", steps=2, guidance=2.0, inversion_steps=3)
    assert len(man) == 4
    idx = compute_cotypicality(m, tmp_path/"tr", n=2)
    assert len(idx) == 2
    c = cotypical_clusters(m, tmp_path/"tr", k=2, patch=16, ensemble=1, reduce="pca")
    assert len(c) and set(c.label) == {"dots", "stars"}


def test_the_xray_checkpoint_chain_on_the_sd15_structure(sd15, tmp_path):
    "An authors' checkpoint as a hub download leaves it: its training strings, its 512 px, one map per finding."
    import shutil
    from diffmine.synth import make_standin
    from diffmine.data import load_records
    from diffmine.typicality import compute_typicality, balanced
    from diffmine.experiment import localisation_records, localisation_table
    hub = tmp_path/"hub"/"models--diff-mining--xray"/"snapshots"/"abc"
    shutil.copytree(sd15, hub)
    m = load_model(hub, device="cpu")
    assert (m.spec["template"], m.spec["null_prompt"], m.working_resolution("chestxray")) == \
        ("Chest X-Ray with {findings:nih}.", "Chest X-Ray.", 512)
    root = make_standin("xray", tmp_path/"x", n_per_label=2, size=64)
    pairs = balanced(localisation_records([r for r in load_records(root, layout="chestxray") if r.meta.get("boxes")]), 3)
    idx = compute_typicality(m, pairs, tmp_path/"run", n=1, layout="chestxray")
    assert set(idx.prompt) == {f"Chest X-Ray with {p.labels[0].replace('_', ' ')}." for p in pairs}
    params = json.loads((tmp_path/"run"/"run.json").read_text())["params"]
    assert params["resolution"] == 512 and params["t_range"] == [0.0, 1.0] and params["posterior"] == "sample"
    assert len(localisation_table(tmp_path/"run", pairs)) == len(pairs)


def _hub_copy(sd15, tmp_path, name):
    "The SD-1.5-shaped model laid out as a hub-cache snapshot of the authors' checkpoint diff-mining/<name>."
    import shutil
    hub = tmp_path/"hub"/f"models--diff-mining--{name}"/"snapshots"/"abc"
    shutil.copytree(sd15, hub)
    return hub


@pytest.mark.slow
def test_the_xray_notebook_with_the_paper_models_on_the_sd15_structure(sd15, tmp_path):
    "The X-ray experiment as the paper profile runs it (an authors' checkpoint and SD 1.5 as the pretrained model)."
    from diffmine.reproduce import run_notebook, repo_root
    hub = _hub_copy(sd15, tmp_path, "xray")
    run_notebook("nbs/experiments/xray.ipynb", tmp_path/"executed.ipynb",
                 dict(data_root=str(tmp_path/"data"), model=str(hub), base_model=str(sd15), resolution=64, n_per_label=2,
                      draws=1, limit=4, n_clusters=2, ensemble=1, run_dir=str(tmp_path/"run"),
                      figures_dir=str(tmp_path/"figs")), root=repo_root(Path(__file__).parent))
    m = json.loads((tmp_path/"figs"/"metrics.json").read_text())
    assert m["prompts"] == dict(template="Chest X-Ray with {findings:nih}.", null_prompt="Chest X-Ray.")
    rows = m["localisation_auc_pr"]["finetuned"]
    seven = {"Mass", "Cardiomegaly", "Nodule", "Effusion", "Atelectasis", "Pneumonia", "Pneumothorax"}
    assert "overall" in rows and (("overall (paper's 7)" in rows) == bool(seven & set(rows)))
    for name in ("pretrained", "finetuned"):
        p = json.loads((tmp_path/"run"/f"typicality-{name}"/"run.json").read_text())["params"]
        assert p["resolution"] == 512 and p["template"] == "Chest X-Ray with {findings:nih}."


@pytest.mark.slow
def test_the_geo_translation_notebook_with_the_paper_models_on_the_sd15_structure(sd15, tmp_path):
    "Geo translation as the paper profile runs it: the authors' g3 checkpoint judges, SD 1.5 is the base, a finer inversion."
    from diffmine.reproduce import run_notebook, repo_root
    hub = _hub_copy(sd15, tmp_path, "g3")
    run_notebook("nbs/experiments/geo_translation.ipynb", tmp_path/"executed.ipynb",
                 dict(data_root=str(tmp_path/"data"), model=str(hub), base_model=str(sd15), resolution=64, n_per_label=1,
                      countries="Japan,France", labels="Japan,France", limit=2, pnp_steps=2, inversion_steps=3, draws=1,
                      n_clusters=2, ensemble=1, run_dir=str(tmp_path/"run"), figures_dir=str(tmp_path/"figs")),
                 root=repo_root(Path(__file__).parent))
    m = json.loads((tmp_path/"figs"/"metrics.json").read_text())
    t = m["translation_settings"]
    assert (t["template"], t["negative_prompt"], t["source_branch_prompt"], t["inversion_steps"], t["resolution"]) == \
        ("A google street view image in {country}", "", "", 3, 512)
    base = json.loads((tmp_path/"run"/"base"/"translations"/"run.json").read_text())["params"]
    assert base["template"] == t["template"]                  # the base model is prompted like the judge
