"""Several processes, launched for real with `torchrun` (2 CPU processes, gloo): typicality and
DIFT features are sharded idx[rank::world] and the merged outputs equal a single-process run file for file;
finetuning trains with DistributedDataParallel through `accelerate` and saves a model that loads."""
import os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from diffmine.models import save_model, load_model
from diffmine import testing

BIN = Path(sys.executable).parent
ENV = {**os.environ, "DIFFMINE_QUIET": "1", "HF_HUB_OFFLINE": "1"}
TYP = ["--draws", 4, "--batch-size", 4, "--device", "cpu"]
CLUSTER = ["--k", 2, "--ensemble", 2, "--device", "cpu"]

pytestmark = [pytest.mark.slow,   # real 2-process torchrun / accelerate launches, about 3 min: `make test-slow` (CI runs it too)
              pytest.mark.skipif(not (BIN/"torchrun").exists(), reason="torchrun is not installed")]


def run(*args, launcher=None, threads=None):
    "`diffmine ARGS`, in one process or under `launcher` (a list: the launcher command before the script)."
    cmd = [*(launcher or []), str(BIN/"diffmine"), *map(str, args)]
    env = ENV if threads is None else {**ENV, "OMP_NUM_THREADS": str(threads)}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return p


TORCHRUN = [str(BIN/"torchrun"), "--nproc_per_node", "2", "--master_port", "29531"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    "A folder dataset (two labels, a bad file, a label the model does not know) and a tiny untrained model."
    root = tmp_path_factory.mktemp("dist")
    data = root/"data"
    rng = np.random.default_rng(0)
    for label in ("red", "blue"):
        (data/label).mkdir(parents=True)
        for i in range(5):
            a = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            a[4:12, 6:14] = (220, 30, 30) if label == "red" else (30, 30, 220)
            Image.fromarray(a).save(data/label/f"{i}.png")
    (data/"red"/"broken.png").write_bytes(b"")                               # a recorded skip
    (data/"zebra").mkdir(); Image.new("RGB", (20, 24)).save(data/"zebra"/"z.png")   # a label the model never saw
    m = testing.tiny_model()
    m.spec.update(template="An image of {label}.", null_prompt="", resolution=16, dataset="generic", labels=["blue", "red"])
    model = save_model(m, root/"model")
    return data, model, root


def _same_tree(a:Path, b:Path, names):
    for name in names:
        fa, fb = sorted((a/name).glob("*.npz")), sorted((b/name).glob("*.npz"))
        assert [f.name for f in fa] == [f.name for f in fb] and fa, name
        for x, y in zip(fa, fb):
            with np.load(x) as u, np.load(y) as v:
                assert sorted(u.files) == sorted(v.files)
                for k in u.files: assert np.array_equal(u[k], v[k]), (x.name, k)


def test_typicality_and_features_two_processes_equal_one(setup):
    data, model, root = setup
    one, two = root/"one", root/"two"
    # torchrun gives each process one thread (OMP_NUM_THREADS=1); CPU kernels split their sums by thread, so the
    # single-process reference uses one thread too (with two, maps agree to float32 rounding, not bit for bit)
    run("typicality", model, data, one, *TYP, threads=1)
    run("typicality", model, data, two, *TYP, launcher=TORCHRUN)
    _same_tree(one, two, ["maps"])
    for f in ("index.csv", "bad_inputs.csv", "run.json"):
        assert (one/f).read_bytes() == (two/f).read_bytes(), f
    bad = pd.read_csv(two/"bad_inputs.csv")
    assert len(bad) == 2 and "'zebra' is not one the model was trained on" in bad.reason[0] and "empty file" in bad.reason[1]
    assert len(pd.read_csv(two/"index.csv")) == 10
    # DIFT features under `diffmine cluster`: sharded the same way, clustered by the main process
    run("mine", one, "--patch", 6); run("mine", two, "--patch", 6)
    run("cluster", one, model, *CLUSTER, threads=1)
    run("cluster", two, model, *CLUSTER, launcher=TORCHRUN)
    _same_tree(one, two, ["features"])
    for f in ("patches.csv", "clusters.csv", "features/params.json", "features/bad_inputs.csv"):
        assert (one/f).read_bytes() == (two/f).read_bytes(), f


def test_resume_with_another_number_of_processes(setup):
    "Half the maps computed by one process, the rest by two: still the same run."
    data, model, root = setup
    ref, part = root/"one", root/"part"
    if not (ref/"index.csv").exists(): run("typicality", model, data, ref, *TYP, threads=1)
    run("typicality", model, data, part, *TYP, "--limit", 5, threads=1)
    assert len(list((part/"maps").glob("*.npz"))) == 5
    run("typicality", model, data, part, *TYP, launcher=TORCHRUN)
    _same_tree(ref, part, ["maps"])
    assert (ref/"index.csv").read_bytes() == (part/"index.csv").read_bytes()


def test_finetune_two_processes_ddp(setup):
    data, _, root = setup
    out = root/"ddp model"
    # accelerate's launcher (its --multi_gpu mode is torchrun's; on a machine without GPUs diffmine asks accelerate
    # for CPU processes, which then train with gloo)
    launcher = [str(BIN/"accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29532"]
    p = run("finetune", data, out, "--base", "small", "--steps", 4, "--batch-size", 2, "--resolution", 16, "--checkpoint-every", 2,
            launcher=launcher)
    assert p.stdout.count("model written to") == 1                          # only the main process reports
    m = load_model(out, device="cpu")
    assert m.spec["resolution"] == 16 and sorted(m.spec["labels"]) == ["blue", "red", "zebra"]
    assert sorted(c.name for c in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not list(out.glob(".*.tmp"))
    log = pd.read_csv(out/"train_log.csv")
    assert log.step.tolist() == [1, 2, 3, 4] and np.isfinite(log.loss).all()
    # both processes saved their random state into the checkpoint, so a resumed DDP run continues from it
    assert {f.name for f in (out/"checkpoint-4").glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    run("finetune", data, out, "--base", "small", "--steps", 6, "--batch-size", 2, "--resolution", 16, "--checkpoint-every", 2, "--resume",
        launcher=TORCHRUN)                                                   # resumed under torchrun: the same thing
    assert pd.read_csv(out/"train_log.csv").step.max() == 6 and load_model(out, device="cpu").spec["resolution"] == 16
