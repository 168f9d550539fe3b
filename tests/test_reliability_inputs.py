"""Inputs that used to give a silent wrong result: a Hugging Face ImageFolder read as one label "train", a
dataset of one label, `cluster` with a model other than the run's, and gallery/figures on clusters made from an
earlier patches.csv. `diffmine.cli.main` runs in-process on a small untrained model: no training."""
import json
import numpy as np, pandas as pd, pytest
from PIL import Image

from diffmine.cli import main
from diffmine.data import load_records, detect_layout
from diffmine.models import save_model
from diffmine import testing

LABELS = ("circle", "square")


def refused(capsys, argv, *expect):
    "Run `diffmine argv`; it must exit 2 with the one-line error form naming every `expect`."
    with pytest.raises(SystemExit) as e: main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(f"diffmine {argv[0]}: error: ") and "Traceback" not in err, err
    for s in expect: assert s in err, (s, err)
    return err


def _image(path, label, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 60, (24, 24, 3), dtype=np.uint8)
    if label == "square": a[6:18, 6:18] = 230
    else:
        yy, xx = np.mgrid[:24, :24]; a[(yy - 12) ** 2 + (xx - 12) ** 2 < 36] = 230
    path.parent.mkdir(parents=True, exist_ok=True); Image.fromarray(a).save(path)


def _model(folder, seed):
    import torch
    torch.manual_seed(seed)
    m = testing.tiny_model()
    m.spec.update(template="An image of {label}.", null_prompt="", resolution=16, dataset="generic", labels=list(LABELS))
    return save_model(m, folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return _model(root/"model a", 0), _model(root/"model b", 1)


@pytest.fixture
def imagefolder(tmp_path):
    "A Hugging Face ImageFolder: train/<label>/ and test/<label>/ split folders."
    root = tmp_path/"hf data"
    for s, n in (("train", 3), ("test", 1)):
        for li, lab in enumerate(LABELS):
            for i in range(n): _image(root/s/lab/f"{i}.png", lab, 10 * li + i + (100 if s == "test" else 0))
    return root


def test_imagefolder_is_read_with_its_labels_not_as_one_label_train(imagefolder, tmp_path):
    assert detect_layout(imagefolder) == "imagefolder"
    recs = load_records(imagefolder)
    assert sorted({r.label for r in recs}) == list(LABELS) and all(r.rel.startswith("train/") for r in recs)
    assert len(load_records(imagefolder, split="test")) == 2
    meta = tmp_path/"hf meta"                                    # the metadata-file form, JSON lines at the root
    lines = []
    for li, lab in enumerate(LABELS):
        for i in range(2):
            _image(meta/"train"/f"{lab}{i}.png", lab, li * 10 + i); lines.append(json.dumps({"file_name": f"train/{lab}{i}.png", "label": lab}))
    (meta/"metadata.jsonl").write_text("\n".join(lines) + "\n")
    assert detect_layout(meta) == "imagefolder"
    assert [r.label for r in load_records(meta)] == ["circle", "circle", "square", "square"]


def test_one_label_is_refused_for_finetuning_and_typicality(capsys, models, tmp_path):
    data = tmp_path/"one label"
    for i in range(3): _image(data/"train"/f"{i}.png", "square", i)
    for verb in (["finetune", data, tmp_path/"m", "--base", "small", "--layout", "folder"],
                 ["typicality", models[0], data, tmp_path/"out", "--layout", "folder"]):
        err = refused(capsys, verb, "1 label ('train') among 3 images", "needs images of at least 2 labels", "--layout")
        assert len(err.strip().splitlines()) == 2
    assert not (tmp_path/"m").exists() and not (tmp_path/"out"/"index.csv").exists()


def test_cluster_uses_the_runs_model_and_refuses_stale_clusters(capsys, models, imagefolder, tmp_path):
    a, b = models
    run = tmp_path/"run"
    main([str(x) for x in ["typicality", a, imagefolder, run, "--draws", 2, "--batch-size", 2]])
    idx = pd.read_csv(run/"index.csv")
    assert sorted(idx.label.unique()) == list(LABELS)
    main([str(x) for x in ["mine", run, "--patch", 8, "--top", 3]])
    capsys.readouterr()
    # another model is refused before anything is written, naming the key; then the run's own model still works
    refused(capsys, ["cluster", run, b, "--ensemble", 2, "--k", 2], "run.json: model differs", str(a), "--other-model")
    assert not (run/"features").exists()
    main([str(x) for x in ["cluster", run, "--ensemble", 2, "--k", 2]])            # MODEL defaults to the run's
    got = capsys.readouterr(); out = got.out
    assert f"DIFT with the run's model {a}" in out and (run/"clusters.csv").exists()
    assert "warning: --k 2 is more than a fifth of the T patches of 2 labels ('circle': 3, 'square': 3)" in got.err
    main([str(x) for x in ["cluster", run, a, "--ensemble", 2, "--k", 2]])          # the same model, named
    capsys.readouterr()
    refused(capsys, ["cluster", run, b, "--ensemble", 2, "--k", 2, "--seed", 1, "--other-model"],
            "features", "other settings (", "seed: 0 -> 1")                      # features/ keeps its settings
    main([str(x) for x in ["gallery", run]])
    # mining again replaces patches.csv: the clusters are stale, and gallery and figures say what to run
    main([str(x) for x in ["mine", run, "--patch", 8, "--top", 2]])
    figs = tmp_path/"figs"
    for argv in (["gallery", run], ["figures", run, figs]):
        refused(capsys, argv, f"{run/'clusters.csv'}: is stale", f"`diffmine cluster {run}`")
    assert not figs.exists()                                                      # refused before drawing anything
    main([str(x) for x in ["cluster", run, "--ensemble", 2, "--k", 2]])
    main([str(x) for x in ["figures", run, figs, "--per-label", 2]])
    assert sorted(p.name for p in figs.glob("clusters_*.png")) == ["clusters_circle.png", "clusters_square.png"]
    # a cluster figure of a label the run no longer has is removed, not left beside the current ones
    (figs/"clusters_gone.png").write_bytes(b""); (figs/"clusters_gone.pdf").write_bytes(b"")
    main([str(x) for x in ["figures", run, figs, "--per-label", 2]])
    assert not (figs/"clusters_gone.png").exists() and not (figs/"clusters_gone.pdf").exists()
    assert "1 patches" not in capsys.readouterr().out


def test_finetune_banner_lists_every_label_prompt(capsys, imagefolder, tmp_path, monkeypatch):
    import diffmine.cli as cli
    seen = {}
    def fake_finetune(records, out, template, null, **kw):              # the banner only: no training here
        seen.update(n=len(records), template=template); return out
    monkeypatch.setattr(cli, "finetune", fake_finetune)
    main(["finetune", str(imagefolder), str(tmp_path/"m"), "--base", "small"])
    out = capsys.readouterr().out
    assert seen["n"] == 6 and "finetune: 6 images of 2 labels, layout imagefolder" in out, out
    assert "'An image of circle.', 'An image of square.'" in out and f"template {seen['template']!r}" in out, out
