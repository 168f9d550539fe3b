# Issue 17 probe: why do some labels fail (Faces pointing 0.3-0.6 on 1880, 1900, 1920, 1980; Cars 0.27 on 1940) while
# others of the same stand-in reach 0.97-1.0 at the same element area? The failing ones are the labels whose elements
# lose their colour: under a 60% sepia (Faces 1880, 1900; Cars 1920-1940) or grey (Faces 1920), or drawn at low
# saturation near the face oval's skin tones (the crescents of the sixth design: Faces 1980, Cars 1970). Faces 1940 is
# grey too but its elements carry a stripe texture. Each variant is a COPY of the stand-in (runs/ablation-<name>-<variant>,
# never the benchmark's generators) with exactly the same scenes (same random draws: positions, shapes, sizes, hues),
# finetuned from diffmine-base with the benchmark's recipe and scored as the benchmark scores it. Variants:
#   colour      no sepia/grey style on the labels that have one (Faces 1940 kept: striped), and the crescents at
#               saturation 0.8-1.0 instead of 0.3-0.5;
#   background  every style kept but applied to the background only (the elements keep their colours); the crescents as
#               in the benchmark: does the style hide the elements, or spread typicality over the whole image?
# The labels a variant does not change show the run-to-run spread.
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/colour_probe.py [DATASET:VARIANT ...]   (default: all four)
import copy, sys
from pathlib import Path
import diffmine.synth as synth
from probe_score import results_file, mine_and_score, save, finetune_variant

out = Path("figures/benchmark/colour_probe.json")
res = results_file(out, "OMP_WAIT_POLICY=PASSIVE python tools/colour_probe.py DATASET:VARIANT")
LABELS = {"faces": synth.FTT_DECADES, "cars": synth.CARDB_DECADES}
STYLES = {"faces": synth.FTT_STYLES, "cars": synth.CARDB_STYLES}
UNSTYLED = {"faces": ("1880", "1900", "1920"), "cars": ("1920", "1930", "1940")}
KEYS = {"colour": "no sepia/grey style, crescents saturated", "background": "styles on the background only"}
render_scene, designs = synth.render_scene, copy.deepcopy(synth.STANDIN_DESIGNS)
styles = {n: dict(s) for n, s in STYLES.items()}

def setup(name, variant):
    "Patch this process's generator (restored first, so variants do not add up); returns the labels it changes."
    synth.render_scene, synth.STANDIN_DESIGNS[:] = render_scene, copy.deepcopy(designs)
    for n, s in STYLES.items(): s.clear(); s.update(styles[n])
    if variant == "colour":
        moons = LABELS[name][5]
        assert synth.STANDIN_DESIGNS[5][0]["name"] == "crescent"
        synth.STANDIN_DESIGNS[5][0]["sat"] = (0.8, 1.0)   # same number of random draws as (0.3, 0.5): the same scenes
        for l in UNSTYLED[name]: STYLES[name].pop(l)
        return sorted(UNSTYLED[name] + (moons,))
    def styled_background(scene, **kw):
        if scene.style: scene.background, scene.style = synth.STYLES[scene.style](scene.background), None
        return render_scene(scene, **kw)
    synth.render_scene = styled_background
    return sorted(styles[name])

for arg in sys.argv[1:] or ["faces:colour", "faces:background", "cars:colour", "cars:background"]:
    name, variant = arg.split(":")
    key = f"{name}: {KEYS[variant]}"
    if key in res["results"]: continue
    changed, work = setup(name, variant), Path(f"runs/ablation-{name}-{variant}")
    ft, secs, root, recs = finetune_variant(name, variant, work)
    save(res, out, key, dict(finetune_seconds=secs, changed_labels=changed,
                             **mine_and_score(ft, name, recs, root, work/name/f"{variant}-typicality")))
