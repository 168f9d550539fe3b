"""The benchmarks are notebooks in the experiment registry (nbs/benchmarks, run by `diffmine reproduce --only
benchmark_X`, as `make benchmark-X` does): each entry, its promised outputs and its full settings; bad settings
refused before anything runs; the checks of the library pieces the notebooks call. The notebooks' smoke defaults run
under nbdev_test; the slow tests run them through the registry's driver into a temporary folder."""
import json
import pytest

from diffmine.cli import main
from diffmine.config import DiffmineError
from diffmine.reproduce import (REGISTRY, BENCHMARK_SETTINGS, PHOTO_SETTINGS, notebook_parameters, repo_root, run_notebook,
                                missing_outputs)

ROOT = repo_root(__file__)
as_notebook = lambda d: {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _refused(monkeypatch, capsys, only, setting):
    "Exit status and message of `diffmine reproduce --only ONLY --set SETTING` (which must stop before running anything)."
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as e: main(["reproduce", "--only", only, "--set", setting])
    return e.value.code, capsys.readouterr().err


def test_quality_benchmark_is_a_registered_notebook():
    e = REGISTRY["benchmark_quality"]
    assert e.notebook == "nbs/benchmarks/quality.ipynb" and (ROOT/e.notebook).exists() and not e.default
    assert e.outputs == ("quality.json", "quality.md")
    demo = e.profiles["demo"]
    assert (demo["work"], demo["figures_dir"], demo["datasets"], demo["fashion"], demo["notes"]) == \
        ("runs/benchmark", "figures/benchmark", "cars,faces,geo,places,xray", True, "figures/benchmark/notes.md")
    assert {k: demo[k] for k in BENCHMARK_SETTINGS} == as_notebook(BENCHMARK_SETTINGS)   # the full benchmark
    assert set(demo) <= set(notebook_parameters(e))                 # every setting is a parameter of the notebook
    assert set(BENCHMARK_SETTINGS) <= set(notebook_parameters(e))


@pytest.mark.parametrize("setting, says", [("stepz=3", "no selected experiment's notebook has this parameter"),
                                           ("fashion_ema=maybe", "fashion_ema=true or fashion_ema=false"),
                                           ("steps=many", "declares steps an int"),
                                           ("benchmark_adaptive.steps=3", "'benchmark_adaptive' is not among those run")])
def test_quality_benchmark_refuses_bad_settings(monkeypatch, capsys, setting, says):
    code, err = _refused(monkeypatch, capsys, "benchmark_quality", setting)
    assert code == 2 and says in err, err


def test_quality_benchmark_checks_standins():
    from diffmine.benchmark import quality_datasets
    assert quality_datasets("cars, xray") == ("cars", "xray") and quality_datasets("none") == ()
    with pytest.raises(DiffmineError, match="boats"): quality_datasets("cars,boats")


def test_photo_benchmark_is_a_registered_notebook():
    e = REGISTRY["benchmark_photos"]
    assert e.notebook == "nbs/benchmarks/photos.ipynb" and (ROOT/e.notebook).exists() and not e.default
    assert e.outputs == ("photos.json", "photos.md", "photos_patches.png", "photos_typicality.png")
    demo = e.profiles["demo"]
    assert (demo["work"], demo["figures_dir"], demo["photos"], demo["emoji"], demo["notes"]) == \
        ("runs/benchmark-photos", "figures/benchmark", "", "", "figures/benchmark/photos_notes.md")
    assert demo["tiny_sources"] is False and demo["child_processes"] is True    # the real archives, the real commands
    assert {k: demo[k] for k in PHOTO_SETTINGS} == PHOTO_SETTINGS
    assert set(demo) <= set(notebook_parameters(e)) and set(PHOTO_SETTINGS) <= set(notebook_parameters(e))


@pytest.mark.parametrize("setting, says", [("draw=3", "no selected experiment's notebook has this parameter"),
                                           ("steps=0.5", "declares steps an int"),
                                           ("tiny_sources=yes", "tiny_sources=true or tiny_sources=false")])
def test_photo_benchmark_refuses_bad_settings(monkeypatch, capsys, setting, says):
    code, err = _refused(monkeypatch, capsys, "benchmark_photos", setting)
    assert code == 2 and says in err, err


def test_photo_benchmark_checks_its_settings():
    from diffmine.benchmark import check_photo_settings
    assert check_photo_settings(PHOTO_SETTINGS) == PHOTO_SETTINGS
    with pytest.raises(DiffmineError, match="images_per_label"):
        check_photo_settings({**PHOTO_SETTINGS, "images_per_label": PHOTO_SETTINGS["n_per_label"] + 1})
    with pytest.raises(DiffmineError, match="draws"): check_photo_settings({**PHOTO_SETTINGS, "draws": 0})


def test_speed_benchmark_is_a_registered_notebook():
    e = REGISTRY["benchmark_speed"]
    assert e.notebook == "nbs/benchmarks/speed.ipynb" and (ROOT/e.notebook).exists() and not e.default
    assert e.outputs == ("speed.json", "speed.md")
    assert e.profiles["demo"] == dict(work="runs/benchmark-speed", figures_dir="figures/benchmark",
                                      sections="overhead,gpu,scaling", overhead={}, gpu={}, scaling={})   # the defaults
    assert set(e.profiles["demo"]) == set(notebook_parameters(e))


@pytest.mark.parametrize("setting, says", [("overhead.images=3", "'overhead' is not among those run"),
                                           ("overhead=3", "declares overhead a dict"),
                                           ("section=overhead", "no selected experiment's notebook has this parameter")])
def test_speed_benchmark_refuses_bad_settings(monkeypatch, capsys, setting, says):
    code, err = _refused(monkeypatch, capsys, "benchmark_speed", setting)
    assert code == 2 and says in err, err


@pytest.mark.slow
@pytest.mark.parametrize("name, keys", [("benchmark_quality", {"settings", "targets", "standins", "kept", "seconds", "notes"}),
                                        ("benchmark_photos", {"settings", "commands", "objects", "base", "finetuned", "oracle",
                                                              "targets"}),
                                        ("benchmark_speed", {"command", "date", "machine", "sections"})])
def test_benchmark_notebook_smoke_run_writes_its_outputs(tmp_path, name, keys):
    e = REGISTRY[name]
    run_notebook(e.notebook, tmp_path/"executed.ipynb", dict(work=str(tmp_path/"work"), figures_dir=str(tmp_path/"figs")), ROOT)
    assert not missing_outputs(e, tmp_path/"figs")
    res = json.loads((tmp_path/"figs"/e.outputs[0]).read_text())
    assert keys <= set(res), set(res)
    if name == "benchmark_speed":
        assert set(res) == keys and set(res["sections"]) == {"overhead", "gpu", "scaling"}
        assert res["command"].startswith("diffmine reproduce --only benchmark_speed --set sections=overhead,gpu,scaling")
