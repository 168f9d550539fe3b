# Issue 17 probe: does letting the label reach the UNet at 16 x 16 (cross-attention at the finest latent level, as SD 1.5
# has at its finest levels) raise what mining finds? diffmine-base cross-attends at 8 x 8 and 4 x 4 only. This probe grows
# the committed diffmine-base by a cross-attention transformer at 16 x 16 (down and up), its output projection zeroed so
# the grown model computes exactly what diffmine-base computes, and finetunes it with the quality benchmark's recipe for
# one stand-in (the new layers learn during the finetune only, not in pretraining: a lower bound for a base pretrained
# with them). Scored like tools/trange_probe.py (20 draws over the model's t-range on the benchmark's images).
# Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/xattn16_probe.py [DATASET ...]
import sys, json, time
from pathlib import Path
import torch
from diffusers import UNet2DConditionModel
from diffmine.reproduce import BENCHMARK_SETTINGS
from diffmine.benchmark import standins, mined_images, _prompted
from diffmine.config import dataset_spec, SEED
from diffmine.finetune import finetune
from diffmine.models import BASE_MODEL, load_model
from diffmine.synth import STANDIN_LAYOUTS
from diffmine.typicality import compute_typicality
from diffmine.patches import mine_patches, default_patch_size
from diffmine.evaluation import localisation, patch_quality

def grown_base():
    "diffmine-base with cross-attention at 16 x 16 too, computing exactly what diffmine-base computes."
    m = load_model(str(BASE_MODEL))
    cfg = dict(m.unet.config)
    cfg["down_block_types"] = ["CrossAttnDownBlock2D"] * len(cfg["down_block_types"])
    cfg["up_block_types"] = ["CrossAttnUpBlock2D"] * len(cfg["up_block_types"])
    unet = UNet2DConditionModel.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
    old = m.unet.float().state_dict()
    missing, unexpected = unet.load_state_dict(old, strict=False)
    assert not unexpected, unexpected
    assert all(".attentions." in k for k in missing), [k for k in missing if ".attentions." not in k]
    with torch.no_grad():
        for k, p in unet.named_parameters():
            if k in missing and ".proj_out." in k: p.zero_()
    m.unet = unet
    return m, len(missing), sum(p.numel() for p in unet.parameters())

names = sys.argv[1:] or ["cars", "faces"]
st = dict(BENCHMARK_SETTINGS)
work, out = Path("runs/benchmark"), Path("figures/benchmark/xattn16_probe.json")
res = json.loads(out.read_text()) if out.exists() else dict(
    command="OMP_WAIT_POLICY=PASSIVE python tools/xattn16_probe.py DATASET", results={},
    settings={k: st[k] for k in ("size", "steps", "batch_size", "lr", "draws", "images_per_label", "k", "seed")})
for name in names:
    key = f"{name} xattn16 zero-init"
    if key in res["results"]: continue
    root, recs = standins(work, (name,), st["size"], st["seed"])[name]
    s = dataset_spec(name)
    base, n_new, n_par = grown_base()
    t0 = time.time()
    ft = finetune(recs, work/name/"model-xattn16", s.template, s.null_prompt, base=base, resolution=st["size"],
                  steps=st["steps"], batch_size=st["batch_size"], lr=st["lr"], cond_dropout=s.cond_dropout,
                  checkpoint_every=100, seed=st["seed"], resume=True, dataset=name)
    secs_ft = time.time() - t0
    run = work/name/"xattn16-typicality"
    t0 = time.time()
    compute_typicality(_prompted(ft, name), recs, run, n=st["draws"], seed=SEED, layout=STANDIN_LAYOUTS[name],
                       limit=mined_images(recs, st))
    secs_typ = time.time() - t0
    pq = patch_quality(mine_patches(run, patch=default_patch_size(s.patch_size, st["size"]), top=None, seed=st["seed"]), root, k=st["k"])
    _, loc = localisation(run, root)
    res["results"][key] = dict(dataset=name, new_tensors=n_new, unet_parameters=n_par, finetune_seconds=round(secs_ft, 1),
                               typicality_seconds=round(secs_typ, 1), pointing=loc["pointing"],
                               ap=loc["ap"], auc_pr=loc["auc_pr"], p_T=pq["T"]["precision"], p_rand=pq["rand"]["precision"],
                               p_negT=pq["-T"]["precision"], shared_T=pq["T"]["shared_rate"], p_oracle=None)
    res["date"] = time.strftime("%Y-%m-%d")
    print(key, res["results"][key], flush=True)
    out.write_text(json.dumps(res, indent=1))
