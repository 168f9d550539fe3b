"""The `diffmine` command end to end, as a user runs it (real subprocesses): synth -> finetune -> typicality ->
evaluate on a small planted set; interrupted finetuning resumed; clear errors for bad models and offline hub ids."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest

from diffmine.config import DiffmineError
from diffmine.models import load_model, save_model
from diffmine import testing

BIN = Path(sys.executable).parent/"diffmine"
ENV = {**os.environ, "DIFFMINE_QUIET": "1", "HF_HUB_OFFLINE": "1"}


def run(*args, check=True):
    p = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=ENV)
    if check: assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")/"planted"
    run("synth", "planted", d, "--n-per-label", 6, "--seed", 1)
    return d


@pytest.mark.slow
def test_pipeline_end_to_end(planted, tmp_path):
    model = tmp_path/"model"
    run("finetune", planted, model, "--base", "small", "--steps", 4, "--batch-size", 4, "--resolution", 32, "--lr", 1e-3,
        "--checkpoint-every", 2)
    spec = json.loads((model/"diffmine.json").read_text())
    assert spec["template"] == "An image of {label}." and spec["null_prompt"] == ""
    assert sorted(spec["labels"]) == ["circles", "crosses", "stripes", "triangles"]
    assert len(pd.read_csv(model/"train_log.csv")) == 4
    run("typicality", model, planted, tmp_path/"typ", "--draws", 4, "--limit", 8)
    idx = pd.read_csv(tmp_path/"typ"/"index.csv")
    assert len(idx) == 8 and idx.label.value_counts().tolist() == [2, 2, 2, 2]   # --limit is balanced over labels
    assert (idx.prompt == "An image of " + idx.label + ".").all()                  # the model's own template
    chk = pd.read_csv(tmp_path/"typ"/"label_check.csv")                             # the check after typicality
    assert sorted(chk.label) == ["circles", "crosses", "stripes", "triangles"] and (chk.images == 2).all()
    run("mine", tmp_path/"typ", "--top", 5)
    patches = pd.read_csv(tmp_path/"typ"/"patches.csv")
    assert set(patches.ranking) == {"T", "rand", "-T"} and patches.groupby(["ranking", "label"]).size().max() <= 5
    assert ((patches.x1 - patches.x0) == 8).all()                                 # 64 px at paper scale -> 8 px at 32 px
    run("cluster", tmp_path/"typ", model, "--k", 2, "--ensemble", 2)
    clusters = pd.read_csv(tmp_path/"typ"/"clusters.csv")
    assert len(clusters) == (patches.ranking == "T").sum() and clusters.groupby("label").cluster_rank.max().max() <= 2
    run("gallery", tmp_path/"typ")
    assert (tmp_path/"typ"/"gallery"/"index.html").exists() and (tmp_path/"typ"/"gallery"/"circles.html").exists()
    run("evaluate", tmp_path/"typ", planted, "--out", tmp_path/"fig", "--k", 3)
    m = json.loads((tmp_path/"fig"/"metrics.json").read_text())
    assert m["typicality_vs_groundtruth"]["images"] == 8 and 0 <= m["typicality_vs_groundtruth"]["hit_rate"] <= 1
    assert {"T", "rand", "-T"} <= set(m["patches"]["mean_by_ranking"])
    run("figures", tmp_path/"typ", tmp_path/"fig", "--data", planted, "--per-label", 2)
    for name in ["typicality", "patches", "clusters_circles"]:
        assert (tmp_path/"fig"/f"{name}.png").stat().st_size > 1000 and (tmp_path/"fig"/f"{name}.pdf").exists()


@pytest.mark.slow
def test_killed_finetune_resumes_from_latest_checkpoint(planted, tmp_path):
    model = tmp_path/"model"
    args = [str(BIN), "finetune", str(planted), str(model), "--base", "small", "--steps", "400", "--batch-size", "2",
            "--resolution", "16", "--checkpoint-every", "3"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (model/"checkpoint-6"/"diffmine_step.json").exists(): time.sleep(0.2)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = sorted(int(p.name.split("-")[1]) for p in model.glob("checkpoint-*"))
    assert done and max(done) >= 6 and not (model/"unet").exists()
    p = run("finetune", planted, model, "--base", "small", "--steps", 400, check=False)
    assert p.returncode == 2 and "--resume" in p.stderr                 # refuses to silently start over
    last = max(done)
    run("finetune", planted, model, "--base", "small", "--steps", last + 3, "--batch-size", 2, "--resolution", 16,
        "--checkpoint-every", 3, "--resume")
    log = pd.read_csv(model/"train_log.csv")
    assert log.step.max() == last + 3 and (model/"unet").is_dir()
    assert load_model(model, device="cpu").spec["resolution"] == 16


def test_bad_model_folders_give_clear_errors(tmp_path):
    p = run("typicality", tmp_path/"missing", tmp_path, tmp_path/"out", check=False)
    assert p.returncode == 2 and "no such model folder" in p.stderr
    (tmp_path/"empty").mkdir()
    with pytest.raises(DiffmineError, match="no unet/"): load_model(tmp_path/"empty")
    folder = save_model(testing.tiny_model(), tmp_path/"m")
    cfg = json.loads((folder/"unet"/"config.json").read_text())
    cfg["block_out_channels"] = [16, 32]                                   # config no longer matches the weights
    (folder/"unet"/"config.json").write_text(json.dumps(cfg))
    with pytest.raises(DiffmineError, match="could not load the UNet"): load_model(folder)


def test_hub_id_offline_is_a_clear_error():
    with pytest.raises(DiffmineError, match="could not be fetched from the model hub") as e:
        load_model("diff-mining/cardb")
    assert "--local-dir" in str(e.value)


def test_reproduce_paper_without_data_fails_early_and_says_what_to_download(tmp_path):
    p = subprocess.run([str(BIN), "reproduce", "--profile", "paper", "--only", "cars"], capture_output=True, text=True,
                       env={**ENV, "HF_HUB_OFFLINE": "1"}, cwd=Path(__file__).parents[1])
    assert p.returncode == 2
    assert "data/cardb is missing" in p.stderr and "CarDB" in p.stderr and "data/README.md" in p.stderr
    assert "model diff-mining/cardb" in p.stderr and "huggingface-cli download" in p.stderr
    p = subprocess.run([str(BIN), "reproduce", "--profile", "paper"], capture_output=True, text=True,
                       env={**ENV, "HF_HUB_OFFLINE": "1"}, cwd=Path(__file__).parents[1])
    assert p.returncode == 2 and "Executing" not in p.stderr            # nothing ran: every problem listed up front
    for folder in ["data/cardb", "data/ftt", "data/g3", "data/places365", "data/chestxray14"]:
        assert f"{folder} is missing" in p.stderr, folder
    assert "stable-diffusion-v1-5" in p.stderr                       # the X-ray experiment's pretrained model too


def test_outputs_get_the_usual_file_mode(tmp_path):
    from diffmine.config import write_json
    f = write_json(tmp_path/"x.json", {"a": 1})
    umask = os.umask(0); os.umask(umask)
    assert (f.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_reproduce_set_is_checked_before_anything_runs(tmp_path, monkeypatch, capsys):
    "`diffmine reproduce --set` refuses a key no selected notebook declares, or an experiment not selected, up front."
    cases = [(["--only", "cars", "--set", "no_such_setting=1"], "no selected experiment's notebook has this parameter"),
             (["--only", "cars", "--set", "faces.draws=3"], "experiment 'faces' is not among those run"),
             (["--only", "cars", "--set", "cars.no_such=3"], "has no parameter 'no_such'"),
             (["--only", "cars", "--set", "draws"], "is not KEY=VALUE")]
    from diffmine.cli import main              # in-process: four CLI runs cost 40 s as subprocesses
    monkeypatch.chdir(Path(__file__).parents[1]); monkeypatch.setenv("DIFFMINE_QUIET", "1")
    for extra, msg in cases:
        with pytest.raises(SystemExit) as e: main(["reproduce", *extra, "--executed", str(tmp_path/"nb")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and msg in err, (extra, err[-500:])
        assert "Executing" not in err and not (tmp_path/"nb").exists()
