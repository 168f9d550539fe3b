"""The speed benchmark's sections end to end (tiny sizes), their JSON and report, the no-CUDA record, the settings the
notebook (nbs/benchmarks/speed.ipynb) refuses, the scaling benchmark against the Doersch et al. baseline on a tiny
setting (time cap included), and the engine settings of typicality (precision checks, bit-identical
results with the plain loop, threads that read ahead and write behind)."""
import json, math
import numpy as np, pytest, torch

from diffmine.typicality import (typicality_map, compute_typicality, check_engine, draws, _Writer, _ahead)
from diffmine.models import repeat_conditioning, cat_conditioning
from diffmine.speed import (run_section, speed_markdown, section_settings, speed_sections, overhead_benchmark,
                            gpu_benchmark, sd15_model, write_images, spread, SD15_UNET, SD15_VAE, fit_exponent,
                            scaling_benchmark)
from diffmine.reproduce import machine
from diffmine.config import DiffmineError, SEED
from diffmine import testing

TINY = dict(images=2, repeats=2, draws=4, batch_size=2, resolution=16, channels=(8, 16))
TINY_UNET = {**SD15_UNET, "block_out_channels": (32, 64, 64, 64), "cross_attention_dim": 32, "layers_per_block": 1,
             "sample_size": 8, "norm_num_groups": 16}
TINY_VAE = {**SD15_VAE, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8}


def test_overhead_section_end_to_end_json_keys(tmp_path):
    res = dict(command="pytest", date="now", machine=machine(),
               sections={name: run_section(name, tmp_path/"work", tmp_path/"fig", section_settings(name, settings))
                         for name, settings in (("overhead", TINY), ("gpu", {}))})
    saved = json.loads(json.dumps(res))                                    # what speed.json holds
    assert {"cpu", "cores", "threads", "torch", "gpu"} <= set(saved["machine"])
    o = saved["sections"]["overhead"]
    for key in ("bare_s_per_image", "typicality_s_per_image", "ratio", "cpu_ratio", "outside_unet_s_per_image", "outside_ratio"):
        assert set(o[key]) == {"median", "q1", "q3", "min", "max", "n"} and o[key]["n"] == 2
    assert o["settings"]["evals_per_image"] == 8 and o["target"] == 1.15 and isinstance(o["met"], bool)
    assert len(o["per_repeat"]) == 2 and o["rows"] and o["summary"].startswith("Small model")
    assert (tmp_path/"fig"/"speed_overhead.png").stat().st_size > 1000
    md = speed_markdown(saved)
    assert "## overhead" in md and "## gpu" in md and "ratio typicality / bare (wall)" in md
    if not torch.cuda.is_available():
        assert saved["sections"]["gpu"]["measured"] is False
        assert "not measured: no CUDA device" in md
    # a second run in the same work folder measures again (nothing is taken from the first run's caches)
    again = overhead_benchmark(tmp_path/"work"/"overhead", **TINY)
    assert again["typicality_s_per_image"]["median"] > 0 and again["outside_unet_s_per_image"]["median"] > 0
    assert again["per_repeat"] != o["per_repeat"]          # fresh timings (comparing two timings of a tiny run is flaky)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the record of a machine without CUDA")
def test_no_cuda_record():
    r = gpu_benchmark()
    assert r == dict(section="gpu", measured=False, reason="not measured: no CUDA device", device=None, target=0.85, rows=[])


def test_gpu_benchmark_code_path_on_the_cpu_with_a_tiny_sd(tmp_path):
    r = gpu_benchmark(tmp_path, device="cpu", model_fn=lambda d: sd15_model(d, unet=TINY_UNET, vae=TINY_VAE),
                      resolutions=(64,), configs=(dict(precision="fp32", channels_last=False),
                                                  dict(precision="fp32", channels_last=True), dict(precision="fp16")),
                      images=1, repeats=2, draws=4, batch_size=4)
    ok, nhwc, fp16 = r["rows"]
    assert ok["device"] == "cpu" and ok["latent"] == "8x8" and ok["typicality_img_s"] > 0 and ok["bare_img_s"] > 0
    assert nhwc["channels_last"] is True and nhwc["ratio"] > 0
    assert "runs only on CUDA" in fp16["skipped"]
    assert r["settings"]["attention"] == "sdpa"


def test_sd15_config_is_stable_diffusion_sized():
    # built on the meta device: the shapes of 860 M parameters, no memory and no time
    m = sd15_model("meta", vae=None)
    n = sum(p.numel() for p in m.unet.parameters())
    assert 855e6 < n < 865e6, n
    assert m.unet.config.cross_attention_dim == 768 and m.unet.config.block_out_channels == (320, 640, 1280, 1280)


def test_fit_exponent():
    ns = [100, 200, 400, 800]
    assert math.isclose(fit_exponent(ns, [0.01 * n ** 1.5 for n in ns]), 1.5, rel_tol=1e-9)
    assert fit_exponent([100, 100], [1, 2]) is None


def test_scaling_benchmark_tiny(tmp_path):
    res = scaling_benchmark(tmp_path, sizes=(8, 16), draws=1, k=3, cap_s=0.0, train_per_label=2, train_steps=2,
                            train_batch=4, baseline=dict(knn=3, detectors=1, rounds=1, negatives=50, hard=10,
                                                         seeds_per_image=1, per_detector=2))
    json.dumps(res)                                                # JSON-able
    assert res["training"]["seconds"] > 0 and "draws" in res["notes"][0]
    for name in ("diffmine", "doersch2012"):
        m = res["methods"][name]
        first, second = m["sizes"]
        assert first["images"] == 8 and first["seconds"] > 0 and first["cpu_seconds"] > 0 and 0 <= first["precision"] <= 1
        assert "seconds" not in second and "cap" in second["skipped"]    # the cap: skipped, never extrapolated
        assert m["exponent"] is None and m["local_exponent"] is None
    assert (tmp_path/"scaling.png").exists()
    again = scaling_benchmark(tmp_path, sizes=(8,), draws=1, k=3, train_steps=2,
                              baseline=dict(knn=3, detectors=1, rounds=1, negatives=50, hard=10))
    assert again["training"]["seconds"] is None                    # the trained model is reused


def test_precision_checks_are_clear():
    with pytest.raises(DiffmineError, match="runs only on CUDA GPUs"): check_engine("cpu", "fp16")
    with pytest.raises(DiffmineError, match="unknown precision"): check_engine("cpu", "half")
    assert check_engine("cpu", "bf16")["precision"] == "bf16"        # allowed (slow on most CPUs)
    m = testing.tiny_model()
    with pytest.raises(DiffmineError, match="runs only on CUDA GPUs"):
        typicality_map(m, torch.randn(1, 3, 16, 16), "An image of a.", "", n=2, precision="fp16")


def test_cli_rejects_fp16_on_cpu(tmp_path, capsys, tiny_model_dir):
    from diffmine.cli import main
    data = tmp_path/"data"; write_images(data, 2, 16)
    with pytest.raises(SystemExit) as e:
        main(["typicality", str(tiny_model_dir), str(data), str(tmp_path/"out"), "--precision", "fp16", "--device", "cpu"])
    assert e.value.code == 2 and "half precision (fp16) autocast runs only on CUDA GPUs" in capsys.readouterr().err
    assert not (tmp_path/"out").exists()                                   # refused before anything is written


def test_speed_notebook_refuses_unknown_sections_and_settings():
    with pytest.raises(DiffmineError, match="unknown benchmark section"): speed_sections("overhead,nope")
    with pytest.raises(DiffmineError, match="not a setting of the gpu section"): section_settings("gpu", {"resolution": 512})
    assert section_settings("gpu", {"resolutions": [512]}) == {"resolutions": (512,)}


def _plain(model, x0, prompt, null, n, batch_size, seed):
    "The estimator written as plainly as possible: draws per image, copies per batch."
    sched = model.scheduler
    t_all, eps_all = draws(tuple(x0.shape[1:]), n, seed=seed)
    abar = sched.alphas_cumprod.float()
    c, z = model.conditioning(prompt), model.conditioning(null)
    total, per = torch.zeros(x0.shape[2:]), []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            t, eps = t_all[i:i + batch_size], eps_all[i:i + batch_size]
            b = len(t); a = abar[t].view(b, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            pred = model.unet(torch.cat([xt, xt]), torch.cat([t, t]),
                              **cat_conditioning(repeat_conditioning(c, b), repeat_conditioning(z, b))).sample
            err = (pred - torch.cat([eps, eps])).pow(2).mean(1)
            d = err[b:] - err[:b]; total += d.sum(0); per.append(d.mean((1, 2)))
    return total / n, torch.cat(per)


def test_engine_is_bit_identical_to_the_plain_loop_for_runs_of_images(tmp_path, tiny_model):
    m = tiny_model
    recs = write_images(tmp_path/"data", 3, 16)
    compute_typicality(m, recs, tmp_path/"run", n=7, batch_size=3, template="An image of {label}.", null_prompt="")
    from diffmine.models import image_tensor
    from diffmine.data import load_image
    from diffmine.runfolder import load_typicality
    for r in recs:
        x0 = m.encode_images(image_tensor(load_image(r.path), 16, m.size_multiple)[None])
        ref, _ = _plain(m, x0, f"An image of {r.labels[0]}.", "", 7, 3, seed=SEED)
        assert np.array_equal(load_typicality(tmp_path/"run", r.rel, size=None), ref.numpy()), r.rel


def test_writer_surfaces_errors_and_finishes_pending_writes(tmp_path):
    done = []
    with _Writer(backlog=2) as w:
        for i in range(5): w.submit(done.append, i)
    assert done == [0, 1, 2, 3, 4]
    def boom(): raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        with _Writer() as w: w.submit(boom)
    assert list(_ahead(lambda x: x * x, [1, 2, 3, 4], depth=2)) == [1, 4, 9, 16]
    assert list(_ahead(lambda x: x, [])) == []


def test_spread():
    s = spread([1.0, 2.0, 3.0, 4.0])
    assert s["median"] == 2.5 and s["min"] == 1 and s["max"] == 4 and s["q1"] == 1.75 and s["n"] == 4
