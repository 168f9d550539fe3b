# Issue 17 probe: is it the latent grid that keeps the model from finding elements by shape? tools/colour_probe.py showed
# that the finetuned diffmine-base finds a label's elements by their colour: where a style hides it (sepia, grey) or the
# elements are pale, pointing falls to 0.2-0.6 at the same element area where vivid elements reach 0.9-1.0. At 128 px an
# element of 5-11% of the image spans 4-7 cells of the 16 x 16 latents. This probe runs the quality benchmark's protocol
# on the SAME stand-in written at 256 px (the same scenes: every size in the generator scales with the image), so every
# element spans twice as many latent cells on each side (32 x 32 latents; what a 4x autoencoder would give at 128 px),
# finetuning the same diffmine-base (pretrained at 128 px: a lower bound for a base pretrained at that grid) with the
# same recipe, patch sizes and blur scaled with the image as the benchmark scales them.
# With --steps N (N > 400) the 256-px finetune is resumed from its 400-step checkpoint to N steps (a finer grid and a
# longer finetune together; tools/steps_per_label_probe.py is the longer finetune alone).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/size_probe.py [--steps N] [DATASET ...]   (about 15 min per stand-in
# here at 400 steps, 30 min more to 1,600)
import argparse
from pathlib import Path
import probe_score
from probe_score import results_file, mine_and_score, save, finetune_variant, continue_from

SIZE = 256
probe_score.SETTINGS["size"] = SIZE                   # this process only: data, finetune resolution, patch size
out = Path("figures/benchmark/size_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/size_probe.py DATASET")
ap = argparse.ArgumentParser(); ap.add_argument("datasets", nargs="*", default=["faces"])
ap.add_argument("--steps", type=int, default=probe_score.SETTINGS["steps"])
args = ap.parse_args()
steps, base_steps = args.steps, probe_score.SETTINGS["steps"]
for name in args.datasets:
    key, tag = (f"{name} at {SIZE} px", f"size{SIZE}") if steps == base_steps else \
               (f"{name} at {SIZE} px, {steps} steps", f"size{SIZE}-steps{steps}")
    if key in res["results"]: continue
    work = Path(f"runs/ablation-{name}-size{SIZE}")
    if steps != base_steps: continue_from(work/name/f"model-size{SIZE}", work/name/f"model-{tag}", base_steps)
    ft, secs, root, recs = finetune_variant(name, tag, work, steps=steps)
    save(res, out, key, dict(finetune_seconds=secs, size=SIZE, steps=steps,
                             **mine_and_score(ft, name, recs, root, work/name/f"{tag}-typicality")))
