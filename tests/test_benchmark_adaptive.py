"""The estimator benchmark notebook (nbs/benchmarks/adaptive.ipynb) at smoke size, through the registry's driver:
it writes the outputs it promises, scores every estimator it names, and a second run resumes from the first."""
import json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_notebook_smoke_run_writes_its_outputs_and_resumes(tmp_path):
    from diffmine.reproduce import REGISTRY, run_notebook, missing_outputs
    e = REGISTRY["benchmark_adaptive"]
    params = dict(work=str(tmp_path/"work"), figures_dir=str(tmp_path/"figs"))
    run_notebook(e.notebook, tmp_path/"executed.ipynb", params, ROOT)
    assert not missing_outputs(e, tmp_path/"figs")
    res = json.loads((tmp_path/"figs"/"adaptive.json").read_text())
    kinds = {r["estimator"] for r in res["rows"]}
    assert {"uniform", "stratified", "pruned", "pruned + stratified", "adaptive (antithetic pairs, first 2)",
            "adaptive (independent draws, first 2)", "adaptive (independent draws, first 4)"} <= kinds
    assert all(0 <= r["overlap"] <= 1 and r["map_error"] >= 0 for r in res["rows"])
    assert res["reference"]["draws"] == (4 - 2) * 8                      # the smoke bank: 4 chunks of 8, 2 for replays
    assert {s["kind"] for s in res["scaling"]} == {"adaptive", "protocol"}
    o = res["ablations"]["oracle_pruning"]                                # N = 8 on the top images, first = 2 elsewhere
    assert 2 * 2 <= o["evals"] <= 2 * 8 and 0 <= o["overlap"] <= 1 and o["variance_reduction_needed_at_20"] == o["evals"] / 20
    first = (tmp_path/"work"/"bank"/"chunk_00.npz").stat().st_mtime_ns
    run_notebook(e.notebook, tmp_path/"executed2.ipynb", params, ROOT)     # everything resumes: the bank is not rewritten
    assert (tmp_path/"work"/"bank"/"chunk_00.npz").stat().st_mtime_ns == first
