"""The paper profile end to end: `diffmine reproduce --profile
paper`, pointed with `--set` at a model with SD 1.5's exact structure (as the authors' five checkpoints and SD 1.5
itself) and at data in the five native layouts without any planted ground truth (as the real datasets are; Places as
its validation set), runs every experiment notebook of the paper: finetuning from the SD-1.5-shaped base (Cars),
typicality, mining, DIFT, clusters, X-ray localisation per finding, Plug-and-Play translation and co-typicality."""
import json
import shutil
from pathlib import Path

import pytest

from diffmine.models import sd15_tiny, clip_bpe_file

ROOT = Path(__file__).resolve().parents[1]
PAPER = ("cars", "faces", "geo", "places", "xray", "geo_translation")
CHECKPOINT = dict(cars="cardb", faces="ftt", geo="g3", places="places", xray="xray", geo_translation="g3")


def _real_like(name, root):
    "A stand-in in the real dataset's layout with its planted ground truth removed, as the real dataset comes."
    from diffmine.synth import make_standin
    make_standin(name, root, n_per_label=2, size=64)
    for f in root.iterdir():
        if f.name.startswith("groundtruth") or f.suffix == ".npz": (shutil.rmtree if f.is_dir() else Path.unlink)(f)
    return root


def _places_val(root):
    "The Places stand-in's images rewritten as Places365's validation layout: val_large/ flat and the two list files."
    from diffmine.data import load_records
    src = _real_like("places", root.parent/"places-train")
    recs = load_records(src, layout="places")
    cats = sorted({"/" + r.rel.rsplit("/", 1)[0] for r in recs})
    (root/"val_large").mkdir(parents=True)
    lines = []
    for i, r in enumerate(recs, 1):
        name = f"Places365_val_{i:08d}{Path(r.rel).suffix}"
        shutil.copy(r.path, root/"val_large"/name)
        lines.append(f"{name} {cats.index('/' + r.rel.rsplit('/', 1)[0])}")
    (root/"categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(cats)))
    (root/"places365_val.txt").write_text("\n".join(lines) + "\n")
    return root


def test_reproduce_the_paper_profile_on_the_sd15_structure(tmp_path):
    from diffmine.reproduce import reproduce, REGISTRY, parse_settings
    try: clip_bpe_file()
    except Exception as e: pytest.skip(f"CLIP's BPE merges cannot be had here: {e}")
    sd15 = sd15_tiny(tmp_path/"sd15", sample_size=8)
    sets = [f"base={sd15}", f"base_model={sd15}", "resolution=64", "draws=1", "limit=4", "per_label=2",
            "n_clusters=2", "ensemble=1", "top=50", "reduce=pca", "pnp_steps=2", "inversion_steps=3", "device=cpu",
            f"figures_dir={tmp_path}/figs/{{name}}", f"run_dir={tmp_path}/runs/{{name}}",
            "cars.model=", "cars.epochs=1", "cars.batch_size=2",          # Cars finetunes SD 1.5 here
            "geo_translation.countries=Japan,France", "geo_translation.labels=Japan,France"]
    data = {}
    for name in PAPER:
        if name == "geo_translation": continue
        root = tmp_path/"data"/name
        data[name] = _places_val(root) if name == "places" else _real_like(name, root)
        sets.append(f"{name}.data_root={root}")
    sets.append(f"geo_translation.data_root={data['geo']}")
    for name in PAPER:
        if name == "cars": continue
        hub = tmp_path/"hub"/f"models--diff-mining--{CHECKPOINT[name]}"/"snapshots"/"abc"
        if not hub.exists(): shutil.copytree(sd15, hub)
        sets.append(f"{name}.model={hub}")
    timings = reproduce("paper", only=",".join(PAPER), root=ROOT, params=parse_settings(sets),
                        executed=tmp_path/"executed")
    assert set(timings) == set(PAPER)
    for name in PAPER:                                        # every promised output, in the folders --set chose
        assert all((tmp_path/"figs"/name/o).exists() for o in REGISTRY[name].outputs), name
    metrics = {n: json.loads((tmp_path/"figs"/n/"metrics.json").read_text()) for n in PAPER}
    run = lambda n, sub="typicality": json.loads((tmp_path/"runs"/n/sub/"run.json").read_text())["params"]
    # the authors' checkpoints are prompted with their training strings, at the authors' working sizes
    assert run("faces")["template"] == "A face portrait of the {decade}s." and run("faces")["resolution"] == 256
    assert run("geo")["template"] == "A google street view image in {country}" and run("geo")["resolution"] == 512
    assert run("places")["template"] == "Image of {scene:places}." and run("places")["resolution"] == 512
    # Places mines its validation set; Geo the paper's countries
    assert metrics["places"]["images"] and all(r.startswith("val_large/") for r in
                                                _index_rels(tmp_path/"runs"/"places"/"typicality"))
    # X-ray: one map per (image, boxed finding), against SD 1.5 as the pretrained model
    xr = metrics["xray"]["localisation_auc_pr"]
    assert {"pretrained", "finetuned"} <= set(xr) and "overall" in xr["finetuned"]
    # Cars was finetuned here from the SD-1.5-shaped base, with the authors' recipe laid under the --set values
    assert (tmp_path/"runs"/"cars"/"model"/"unet").is_dir()
    t = metrics["geo_translation"]["translation_settings"]
    assert (t["template"], t["negative_prompt"], t["inversion_steps"]) == ("A google street view image in {country}", "", 3)
    assert (tmp_path/"executed"/"cars-paper.ipynb").exists()


def _index_rels(run):
    import pandas as pd
    return list(pd.read_csv(run/"index.csv").rel)
