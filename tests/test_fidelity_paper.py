"""Fidelity of the paper profile to the authors' checkpoints and protocol (the authors' training prompts,
the paper profile's own finetune with the authors' recipe, Places365's nested class names, DIFT and adaptive
typicality at the working resolution, GPU defaults), and the checks of `compute_typicality` (nothing written before every argument is checked, mismatches named
key by key, multi-label rows with a known label kept). Each test fails on the code before the fix it covers."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from diffmine.config import DiffmineError, CHECKPOINTS, format_prompt, save_npz
from diffmine.data import Record, load_records
from diffmine.models import load_model, small_model, tiny_sd, describe_checkpoint, checkpoint_spec, hub_files, save_model
from diffmine.synth import make_standin
from diffmine.typicality import compute_typicality
from diffmine.runfolder import load_index, image_key
from diffmine import testing
from diffmine.testing import noise_images


def _images(root, labels, n=1, size=(16, 16)):
    return noise_images(root, labels, n, size)


# ---------------------------------------------------------------------------------------------------------------
# Item 1: the authors' checkpoints are prompted with the strings they were trained on

def test_a_hub_checkpoint_is_scored_with_its_training_strings(tmp_path):
    folder = tiny_sd(tmp_path/"hub"/"models--diff-mining--ftt"/"snapshots"/"0123abc")   # as a hub download leaves it
    (folder/"diffmine.json").unlink()                                                  # the authors' folders have none
    m = load_model(folder, device="cpu")
    assert (m.spec["template"], m.spec["null_prompt"]) == ("A face portrait of the {decade}s.", "A face portrait")
    recs = _images(tmp_path/"data", ["1880", "1990"], size=(64, 64))
    idx = compute_typicality(m, recs, tmp_path/"run", n=2, layout="ftt")
    run = json.loads((tmp_path/"run"/"run.json").read_text())
    assert run["params"]["template"] == "A face portrait of the {decade}s." and run["params"]["null_prompt"] == "A face portrait"
    assert "diff-mining/ftt" in run["prompts_from"]
    assert sorted(idx.prompt) == ["A face portrait of the 1880s.", "A face portrait of the 1990s."]
    from diffmine.translation import translate_dataset
    translate_dataset(m, recs[:1], tmp_path/"tr", steps=2, guidance=2.0, layout="ftt")
    tr = json.loads((tmp_path/"tr"/"run.json").read_text())["params"]
    assert (tr["template"], tr["null_prompt"]) == ("A face portrait of the {decade}s.", "A face portrait")
    from diffmine.features import compute_features             # DIFT checks the model's template against the run's
    compute_features(m, tmp_path/"run", ensemble=1)


def test_a_downloaded_copy_is_described_by_describe_checkpoint(tmp_path):
    folder = tiny_sd(tmp_path/"xray-copy"); (folder/"diffmine.json").unlink()
    assert load_model(folder, device="cpu").spec == {}               # a folder of one's own: nothing to recognise
    describe_checkpoint(folder, "diff-mining/xray")
    m = load_model(folder, device="cpu")
    assert m.spec["template"] == "Chest X-Ray with {findings:nih}." and m.spec["resolution"] == 512
    assert format_prompt(m.spec["template"], ["Pleural_Thickening", "Mass"]) == "Chest X-Ray with Pleural Thickening, Mass."
    assert format_prompt(m.spec["template"], "No Finding") == "Chest X-Ray with no finding."
    with pytest.raises(DiffmineError, match="not one of the authors' checkpoints"):
        describe_checkpoint(folder, "someone/else")


def test_every_authors_checkpoint_has_its_own_strings():
    assert set(CHECKPOINTS) == {"diff-mining/cardb", "diff-mining/ftt", "diff-mining/g3", "diff-mining/places",
                                "diff-mining/xray"}
    assert format_prompt(CHECKPOINTS["diff-mining/g3"]["template"], "Japan") == "A google street view image in Japan"
    assert CHECKPOINTS["diff-mining/g3"]["null_prompt"] == "A google street view image"
    assert format_prompt(CHECKPOINTS["diff-mining/places"]["template"], "basketball court indoor") == \
        "Image of indoor basketball court."
    assert checkpoint_spec("diff-mining/cardb")["resolution"] == 256


# ---------------------------------------------------------------------------------------------------------------
# Item 2: X-ray localisation, one map per (image, boxed finding), prompted with that finding alone

def test_xray_localisation_scores_one_map_per_finding(tmp_path):
    from diffmine.experiment import localisation_records, localisation_table
    root = make_standin("xray", tmp_path/"x", n_per_label=3, size=32)
    recs = load_records(root, layout="chestxray")
    boxed = [r for r in recs if r.meta.get("boxes")]
    pairs = localisation_records(boxed)
    assert len(pairs) == sum(len({b["label"] for b in r.meta["boxes"]}) for r in boxed)
    assert all(len(p.labels) == 1 for p in pairs)
    m = small_model(32, channels=(8, 16), max_length=12)
    idx = compute_typicality(m, pairs, tmp_path/"run", n=2, layout="chestxray")
    assert set(idx.prompt) == {f"A chest X-ray with {p.labels[0]}." for p in pairs}          # never the joined findings
    loc = localisation_table(tmp_path/"run", pairs)
    assert sorted(zip(loc.rel, loc.finding)) == sorted((p.meta["image_rel"], p.labels[0]) for p in pairs)


def test_xray_notebook_scores_the_pairs():
    from test_fidelity_data import _calls
    import ast
    nb = "nbs/experiments/xray.ipynb"
    assert _calls(nb, "localisation_records")
    for call in _calls(nb, "compute_typicality"):
        assert ast.unparse(call.args[1]) == "boxed"
    assert not any("spec.template" in ast.unparse(c) for c in _calls(nb, "compute_typicality"))  # the model's own


def test_localisation_summary_reports_the_papers_seven():
    from diffmine.evaluation import localisation_summary, PAPER_OVERALL
    t = pd.DataFrame(dict(rel="a", finding=["Mass", "Infiltration"], auc_pr=[0.2, 0.8], ap=0.0, chance=0.1))
    s = localisation_summary({"m": t})
    assert s.loc["overall", "m"] == pytest.approx(0.5) and s.loc[PAPER_OVERALL, "m"] == pytest.approx(0.2)


# ---------------------------------------------------------------------------------------------------------------
# Item 3 (and 5's own-label version): co-typicality pools each version first, then takes the median

def _translation_run(tmp_path, labels=("dots", "moons", "stars")):
    from diffmine.translation import translate_dataset, compute_cotypicality
    recs = _images(tmp_path/"data", labels[:2], size=(16, 16))
    m = testing.tiny_model()
    translate_dataset(m, recs, tmp_path/"run", labels=list(labels), steps=2, guidance=2.0)
    compute_cotypicality(m, tmp_path/"run", n=2)
    return m, recs


def test_cotypicality_pools_before_the_median(tmp_path):
    from diffmine.translation import cotypical_elements, label_versions, load_manifest
    _translation_run(tmp_path)
    out = tmp_path/"run"; v = label_versions(load_manifest(out))
    src = sorted(v.source_key.unique())[0]
    A, B, C = (np.zeros((16, 16), np.float32) for _ in range(3))
    A[0:4, 0:2] = B[0:4, 2:4] = 10.0            # box at (0, 0): pooled 5, 5, 0 -> median 5; per pixel the median is 0
    for M in (A, B, C): M[8:12, 8:12] = 1.0    # box at (8, 8): 1 whichever way
    for M, key in zip((A, B, C), v[v.source_key == src].sort_values("target_label").vkey):
        f = out/"typicality"/"maps"/f"{key}.npz"
        with np.load(f) as z: d = {k: z[k] for k in z.files}
        save_npz(f, {**d, "map": M})
    el = cotypical_elements(out, patch=4, per_image=1)
    top = el[el.key == src].iloc[0]
    assert (top.x0, top.y0) == (0, 0) and top.typicality == pytest.approx(5.0)   # median-then-pool would pick (8, 8)


def test_cotypicality_scores_the_original_for_the_own_label(tmp_path):
    from diffmine.translation import label_versions, load_manifest
    _, recs = _translation_run(tmp_path)
    out = tmp_path/"run"; v = label_versions(load_manifest(out))
    own = v[v.target_label == v.source_label]
    assert len(own) == len(recs) and all(f.startswith("originals/") for f in own.vfile)
    idx = load_index(out/"typicality").set_index("key")
    for r in own.itertuples():
        assert Path(idx.loc[r.vkey, "path"]) == out/r.vfile
        np.testing.assert_array_equal(np.asarray(Image.open(out/r.vfile).convert("RGB")),
                                      np.asarray(Image.open(r.source_path).convert("RGB")))   # 16 px: no resize


# ---------------------------------------------------------------------------------------------------------------
# Item 4: working resolution per dataset; patch side in working pixels

def test_a_model_without_spec_works_at_the_datasets_resolution(tmp_path):
    folder = tiny_sd(tmp_path/"sd", sample_size=8); (folder/"diffmine.json").unlink()
    m = load_model(folder, device="cpu")
    assert m.resolution == 64 and m.working_resolution("cardb") == 256 and m.working_resolution("g3") == 512
    assert m.working_resolution("generic") == 64
    recs = _images(tmp_path/"data", ["1950", "1960"], size=(300, 260))
    compute_typicality(m, recs, tmp_path/"run", n=1, layout="cardb")
    assert json.loads((tmp_path/"run"/"run.json").read_text())["params"]["resolution"] == 256
    with np.load(next((tmp_path/"run"/"maps").glob("*.npz"))) as z: assert min(z["map"].shape) == 256 // 8


def test_mined_patch_side_is_in_working_pixels(tmp_path):
    from diffmine.patches import mine_patches
    from diffmine.testing import fake_run
    run = fake_run(tmp_path/"run", [("a/0.png", "a", np.random.default_rng(0).normal(size=(16, 16)), (1024, 1024)),
                                         ("b/0.png", "b", np.random.default_rng(1).normal(size=(16, 16)), (1024, 1024))],
                        dataset="places")
    spec = json.loads((run/"run.json").read_text()); spec["params"]["resolution"] = 512
    (run/"run.json").write_text(json.dumps(spec))
    p = mine_patches(run, top=None)
    assert set(p.x1 - p.x0) == {128}                       # 64 px at 512 px working size = 128 px of a 1024 px image


def test_paper_profile_works_at_the_authors_sizes():
    from diffmine.reproduce import REGISTRY
    res = {n: REGISTRY[n].profiles["paper"]["resolution"] for n in ("cars", "faces", "geo", "places", "xray")}
    assert res == dict(cars=256, faces=256, geo=512, places=512, xray=512)


# ---------------------------------------------------------------------------------------------------------------
# Items 5 and 9: PnP's residual branch and "" prompts; the authors' 999-step inversion

def test_pnp_injects_the_residual_branch_and_keeps_the_shortcut():
    from diffmine.translation import PnPInjection
    m = small_model(32, max_length=8); blk = m.unet.up_blocks[1].resnets[1]
    seen = {}
    h = blk.register_forward_hook(lambda mod, a, o: seen.update(x=a[0], out=o))
    with PnPInjection(m.unet, feature_layer=(1, 1), attn_layers=0) as inj, torch.no_grad():
        inj.features = True
        m.unet(torch.randn(2, 3, 32, 32), torch.tensor([500, 500]), **m.conditioning(["a", "b"]))
    h.remove()
    short = blk.conv_shortcut(seen["x"]) if blk.conv_shortcut is not None else seen["x"]
    residual = seen["out"] * blk.output_scale_factor - short
    torch.testing.assert_close(residual[1], residual[0], atol=1e-4, rtol=1e-4)    # the source's residual...
    assert not torch.allclose(seen["out"][1], seen["out"][0])                     # ... on the target's own shortcut


def test_translation_prompts_pnp_branches_with_empty_strings(tmp_path):
    from diffmine.translation import translate_dataset
    recs = _images(tmp_path/"data", ["dots"])
    m = testing.tiny_model()
    m.spec.update(template="An image of {label}.", null_prompt="A picture.")
    translate_dataset(m, recs, tmp_path/"tr", labels=["dots", "stars"], steps=2, guidance=2.0)
    p = json.loads((tmp_path/"tr"/"run.json").read_text())["params"]
    assert (p["negative_prompt"], p["source_branch_prompt"], p["null_prompt"]) == ("", "", "A picture.")


def test_inversion_on_the_authors_999_steps():
    from diffmine.models import sd_scheduler
    from diffmine.translation import ddim_timesteps, _inversion_grid
    from diffmine.reproduce import REGISTRY
    s = sd_scheduler(); s.register_to_config(steps_offset=1)
    grid = _inversion_grid(s, ddim_timesteps(s, 50), 999)
    assert grid.tolist() == list(range(1, 982)) and set(ddim_timesteps(s, 50).tolist()) <= set(grid.tolist())
    assert REGISTRY["geo_translation"].profiles["paper"]["inversion_steps"] == 999


# ---------------------------------------------------------------------------------------------------------------
# Item 10: the authors' trapezoid (no point added at recall 0)

def test_auc_pr_adds_no_point_at_recall_zero():
    from diffmine.evaluation import auc_pr
    assert auc_pr(np.array([0.01, 1e-4, 1e-6, -1.0]), np.array([True, True, False, False])) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------------
# The cheap "would crash on real models" items

def test_hub_downloads_fetch_one_weight_set_per_part():
    files = ["model_index.json", "v1-5-pruned.ckpt", "unet/config.json", "unet/diffusion_pytorch_model.bin",
             "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
             "unet/diffusion_pytorch_model.non_ema.bin", "vae/config.json", "vae/diffusion_pytorch_model.bin",
             "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json",
             "safety_checker/pytorch_model.bin", "scheduler/scheduler_config.json"]
    got = hub_files(files)
    assert got == sorted(["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                          "vae/config.json", "vae/diffusion_pytorch_model.bin", "text_encoder/config.json",
                          "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json", "scheduler/scheduler_config.json"])


def test_saved_latent_models_load_as_stable_diffusion_pipelines(tmp_path):
    from diffusers import StableDiffusionPipeline
    folder = tiny_sd(tmp_path/"sd")
    assert json.loads((folder/"model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    save_model(testing.tiny_model(), tmp_path/"pixel")
    assert not (tmp_path/"pixel"/"model_index.json").exists()        # pixel space: no Stable Diffusion pipeline


def test_sd15_default_hub_id():
    from diffmine.reproduce import SD15, REGISTRY
    assert SD15 == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert REGISTRY["xray"].profiles["paper"]["base_model"] == SD15


# ---------------------------------------------------------------------------------------------------------------
# In compute_typicality

def test_a_refused_typicality_run_writes_nothing(tmp_path):
    recs = _images(tmp_path/"data", ["squares", "dots"])
    m = testing.tiny_model()
    m.spec["labels"] = ["cats"]                                       # the wrong model
    with pytest.raises(DiffmineError, match="none of the data's labels"):
        compute_typicality(m, recs, tmp_path/"run", n=2)
    assert not (tmp_path/"run").exists()
    m.spec["labels"] = ["squares", "dots"]                            # the right one is not refused afterwards
    assert len(compute_typicality(m, recs, tmp_path/"run", n=2)) == 2
    for kw, msg in [(dict(n=0), "n=0"), (dict(batch_size=0), "batch_size=0"), (dict(t_range=(0.9, 0.1)), "reversed")]:
        with pytest.raises(DiffmineError, match=msg): compute_typicality(m, recs, tmp_path/"other", **kw)
    assert not (tmp_path/"other").exists()


def test_settings_mismatch_names_the_keys_that_differ(tmp_path):
    recs = _images(tmp_path/"data", ["squares", "dots"])
    m = testing.tiny_model()
    compute_typicality(m, recs, tmp_path/"run", n=2)
    with pytest.raises(DiffmineError) as e: compute_typicality(m, recs, tmp_path/"run", n=3, seed=7)
    msg = str(e.value)
    assert "draws: 2 -> 3" in msg and "seed: 42 -> 7" in msg and "template" not in msg


def test_a_multi_label_row_with_a_known_label_is_scored(tmp_path):
    recs = _images(tmp_path/"data", ["squares"])
    multi = [Record(recs[0].path, ("square", "green"), "multi.png")]
    m = testing.tiny_model()
    m.spec["labels"] = ["square", "circle"]
    idx = compute_typicality(m, multi, tmp_path/"run", n=2, template="An image of {label}.")
    assert idx.label.tolist() == ["square"]
    bad = pd.read_csv(tmp_path/"run"/"bad_inputs.csv")
    assert "'green'" in bad.reason[0] and "scored under 'square' only" in bad.reason[0]


def test_the_authors_checkpoints_encode_with_a_seeded_posterior_sample(tmp_path):
    from diffmine.runfolder import load_typicality
    folder = tiny_sd(tmp_path/"sd")
    m = load_model(folder, device="cpu")
    recs = _images(tmp_path/"data", ["1950"], size=(64, 64))
    maps = {}
    for name in ("mean", "sample", "sample-again"):
        compute_typicality(m, recs, tmp_path/name, n=2, template="{label}", posterior=name.split("-")[0])
        maps[name] = load_typicality(tmp_path/name, recs[0].rel, size=None)
    assert not np.array_equal(maps["mean"], maps["sample"]) and np.array_equal(maps["sample"], maps["sample-again"])
    assert checkpoint_spec("diff-mining/cardb")["posterior"] == "sample"
    assert json.loads((tmp_path/"sample"/"run.json").read_text())["params"]["posterior"] == "sample"


# ---------------------------------------------------------------------------------------------------------------
# The paper profile's own finetune: SD 1.5 with the authors' recipe, stated before the run

PAPER_BATCH = dict(cars=64, faces=64, geo=8, places=8, xray=8)


def test_paper_profile_finetunes_sd15_with_the_authors_recipe():
    from diffmine.config import PAPER_FINETUNE
    from diffmine.reproduce import REGISTRY, SD15
    for name, batch in PAPER_BATCH.items():
        p = REGISTRY[name].profiles["paper"]
        assert (p["base"], p["lr"], p["batch_size"], p["epochs"]) == (SD15, 1e-4, batch, 100), name
        r = PAPER_FINETUNE[name]
        assert (r.lr, r.weight_decay, r.grad_clip, r.schedule) == (1e-4, 1e-2, 1.0, "constant"), name
    assert PAPER_FINETUNE["places"].note                   # the value METHOD.md does not give is said to be chosen
    assert PAPER_FINETUNE["cars"].steps() == 100 * 159     # CarDB: 10,130 images, 159 batches of 64 an epoch
    g = REGISTRY["geo_translation"].profiles["paper"]
    assert "base" not in g and g["batch_size"] == 8 and g["epochs"] == 100 and g["lr"] == 1e-4


def test_finetuning_notebooks_train_for_epochs():
    import ast
    import papermill as pm
    from test_fidelity_data import _calls
    for name in ("cars", "faces", "geo", "places", "xray", "geo_translation"):
        nb = f"nbs/experiments/{name}.ipynb"
        assert pm.inspect_notebook(nb)["epochs"]["default"] == "0", name          # the smoke run keeps its steps
        calls = _calls(nb, "experiment_model") or _calls(nb, "epoch_steps")
        assert calls and all("epochs" in ast.unparse(c) for c in calls), name


def _saved_small(folder):
    save_model(testing.tiny_model(), folder)
    return folder


def test_experiment_model_trains_the_recipe_with_gradient_checkpointing(tmp_path, monkeypatch):
    import diffmine.experiment as ex
    from diffmine.config import dataset_spec
    seen = {}
    def fake_finetune(records, out, template, null_prompt, base, **kw):
        seen.update(kw, base=base); return _saved_small(tmp_path/"done")
    monkeypatch.setattr(ex, "finetune", fake_finetune)
    recs = [Record(Path(f"{i}.png"), ("1950",), f"{i}.png") for i in range(10)]
    ex.experiment_model(recs, dataset_spec("cars"), tmp_path/"out", base=_saved_small(tmp_path/"base"), batch_size=4,
                        epochs=3, lr=1e-4)
    assert seen["steps"] == 3 * 3 and (seen["weight_decay"], seen["grad_clip"], seen["lr"]) == (1e-2, 1.0, 1e-4)
    assert seen["base"] == tmp_path/"base" and seen["gradient_checkpointing"] is None   # finetune's default: CUDA only
    ex.experiment_model(recs, dataset_spec("cars"), tmp_path/"out", base="small", steps=5)
    assert seen["gradient_checkpointing"] is False                          # the small pixel model: never
    ex.experiment_model(recs, dataset_spec("cars"), tmp_path/"out", base=str(tmp_path/"base"), steps=5,
                        gradient_checkpointing=True)
    assert seen["steps"] == 5 and seen["gradient_checkpointing"] is True
    with pytest.raises(DiffmineError, match="epochs=-1: not a positive whole number"):
        ex.experiment_model(recs, dataset_spec("cars"), tmp_path/"out", base="small", epochs=-1)


def test_finetune_checkpoints_gradients_on_cuda_by_default_with_the_same_steps(tmp_path, monkeypatch):
    import diffmine.finetune as ft
    recs = _images(tmp_path/"data", ["squares", "dots"], n=2)
    logs = {}
    for gc in (False, True):                                              # the same losses with and without
        ft.finetune(recs, tmp_path/f"m{gc}", "{label}", "", base=_saved_small(tmp_path/"base"), steps=2, batch_size=2,
                    checkpoint_every=2, gradient_checkpointing=gc)
        logs[gc] = pd.read_csv(tmp_path/f"m{gc}"/"train_log.csv").loss.tolist()
    np.testing.assert_allclose(logs[True], logs[False], rtol=1e-4)
    import types, diffusers
    class Stop(Exception): pass
    def enabled(self): raise Stop(type(self).__name__)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)         # the default follows the device
    monkeypatch.setattr(ft, "PartialState", lambda **kw: None)
    monkeypatch.setattr(ft, "Accelerator", lambda **kw: types.SimpleNamespace(device="cpu"))
    monkeypatch.setattr(diffusers.ModelMixin, "enable_gradient_checkpointing", enabled)
    with pytest.raises(Stop):                                              # turned on before any step
        ft.finetune(recs, tmp_path/"cuda", "{label}", "", base=_saved_small(tmp_path/"base2"), steps=2, batch_size=2)


def test_preflight_states_the_recipe_and_its_cost(tmp_path, monkeypatch):
    from diffmine.reproduce import REGISTRY, preflight
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path/"data"/"cardb").mkdir(parents=True); (tmp_path/"data"/"chestxray14").mkdir(); (tmp_path/"sd").mkdir()
    plan = preflight([REGISTRY["cars"], REGISTRY["xray"]], "paper", root=tmp_path,
                     params={"model": "", "base": str(tmp_path/"sd"), "base_model": str(tmp_path/"sd")})
    cars, xray = plan
    assert "AdamW lr 0.0001, weight decay 0.01, grad clip 1, constant schedule, batch 64 per GPU, 100 epochs" in cars
    assert "10,130 training images: 15,900 steps, 1,017,600 images" in cars and "at 256 px" in cars
    assert "batch 8 per GPU, 100 epochs" in xray and "86,524 training images: 1,081,600 steps" in xray
    assert preflight([REGISTRY["cars"]], "paper", root=tmp_path, params={"model": str(tmp_path/"sd")})[0].startswith(
        f"cars: scores with {tmp_path/'sd'} (no finetuning here)")
    with pytest.raises(DiffmineError, match="base model /nowhere/sd15 \\(to finetune\\) is neither a folder"):
        preflight([REGISTRY["cars"]], "paper", root=tmp_path, params={"model": "", "base": "/nowhere/sd15"})


# ---------------------------------------------------------------------------------------------------------------
# Places365's nested classes, prompted as the authors wrote them

def test_places_nested_classes_are_prompted_as_the_authors_did(tmp_path):
    from diffmine.config import DATASETS
    from diffmine.data import load_places
    (tmp_path/"val_large").mkdir()
    (tmp_path/"categories_places365.txt").write_text("/a/airfield 0\n/a/apartment_building/outdoor 1\n"
                                                     "/b/basketball_court/indoor 2\n/b/bus_interior 3\n")
    lines = []
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path/"val_large"/f"Places365_val_{i:08d}.jpg")
        lines.append(f"Places365_val_{i:08d}.jpg {i}")
    (tmp_path/"places365_val.txt").write_text("\n".join(lines) + "\n")
    recs = load_places(tmp_path, split="val")
    assert [r.label for r in recs] == ["airfield", "apartment building outdoor", "basketball court indoor", "bus interior"]
    got = [format_prompt(CHECKPOINTS["diff-mining/places"]["template"], r.labels) for r in recs]
    assert got == ["Image of airfield.", "Image of outdoor apartment building.", "Image of indoor basketball court.",
                   "Image of bus interior."]                                    # bus_interior is a category, not nested
    assert format_prompt(DATASETS["places"].template, recs[2].labels) == "An image of indoor basketball court."


# ---------------------------------------------------------------------------------------------------------------
# DIFT and adaptive typicality at the working resolution, as typicality

def test_features_and_adaptive_work_at_the_working_resolution(tmp_path):
    from diffmine.adaptive import adaptive_typicality
    from diffmine.features import compute_features, dift_features
    from diffmine.models import image_tensor
    folder = tiny_sd(tmp_path/"sd", sample_size=8); (folder/"diffmine.json").unlink()
    m = load_model(folder, device="cpu")                    # a hub model without spec: 64 px UNet, Cars work at 256
    recs = _images(tmp_path/"data", ["1950", "1960"], size=(300, 260))
    compute_typicality(m, recs, tmp_path/"run", n=1, layout="cardb")
    out = compute_features(m, tmp_path/"run", ensemble=1)
    assert json.loads((out/"params.json").read_text())["resolution"] == 256
    img = Image.open(recs[0].path).convert("RGB")
    want = dift_features(m, m.encode_images(image_tensor(img, 256, m.size_multiple)[None]), "A car from the 1950s.",
                         161, 1, 1, 0).shape
    with np.load(out/f"{image_key(recs[0].rel)}.npz") as z: assert z["features"].shape == want
    adaptive_typicality(m, recs, tmp_path/"ad", budget=8, n=4, first=2, top=1, layout="cardb")
    assert json.loads((tmp_path/"ad"/"run.json").read_text())["params"]["resolution"] == 256
    with np.load(next((tmp_path/"ad"/"maps").glob("*.npz"))) as z: assert min(z["map"].shape) == 256 // 8


# ---------------------------------------------------------------------------------------------------------------
# GPU defaults

def test_default_precision_is_half_on_cuda_only(monkeypatch):
    from diffmine.config import default_precision
    assert default_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert default_precision("cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert default_precision("cuda:0") == "fp16"
