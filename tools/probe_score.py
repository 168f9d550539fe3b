# Shared by the issue-17 probes (tools/*_probe.py): typicality of a model on the quality benchmark's images of one
# stand-in, scored as the benchmark scores it (pointing game, AUC-PR, AP, precision@K of T, Rand., -T, shared rate).
import json, shutil, time
from pathlib import Path
import torch
from diffusers import UNet2DConditionModel
from diffmine.reproduce import BENCHMARK_SETTINGS
from diffmine.benchmark import mined_records, _prompted, standins
from diffmine.finetune import finetune
from diffmine.config import dataset_spec, SEED
from diffmine.synth import STANDIN_LAYOUTS
from diffmine.typicality import compute_typicality
from diffmine.patches import mine_patches, default_patch_size
from diffmine.evaluation import localisation, patch_quality
from diffmine.models import BASE_MODEL, load_model

SETTINGS = dict(BENCHMARK_SETTINGS)
PER_LABEL = {"xray": SETTINGS["xray_per_label"]}   # the stand-ins' generator settings, as the benchmark makes them

def results_file(out, command:str) -> dict:
    "The probe's JSON (resumed if it exists): its command, the benchmark settings it shares, results by key."
    out = Path(out)
    return json.loads(out.read_text()) if out.exists() else dict(command=command, results={},
        settings={k: SETTINGS[k] for k in ("size", "steps", "batch_size", "lr", "draws", "images_per_label", "k", "seed")})

def mine_and_score(model_dir, name:str, recs:list, root, run, draws:int|None=None, seed:int=SEED, **typicality_kw) -> dict:
    """Typicality of the model folder on the benchmark's images of stand-in `name` (in `run`), then the benchmark's metrics;
    `seed` fixes the draws (the benchmark's: SEED)."""
    st, s = SETTINGS, dataset_spec(name)
    t0 = time.time()
    mined = mined_records(recs, st)
    compute_typicality(_prompted(model_dir, name), mined, run, n=draws or st["draws"], seed=seed, layout=STANDIN_LAYOUTS[name],
                       limit=len(mined), **typicality_kw)
    secs = time.time() - t0
    pq = patch_quality(mine_patches(run, patch=default_patch_size(s.patch_size, st["size"]), top=None, seed=st["seed"]), root, k=st["k"])
    _, loc = localisation(run, root)
    return dict(dataset=name, draws=draws or st["draws"], typicality_seconds=round(secs, 1), pointing=loc["pointing"],
                ap=loc["ap"], auc_pr=loc["auc_pr"], p_T=pq["T"]["precision"], p_rand=pq["rand"]["precision"],
                p_negT=pq["-T"]["precision"], shared_T=pq["T"]["shared_rate"], hit_T=pq["T"]["hit"],
                per_label_pointing={l: round(v["pointing"], 3) for l, v in loc["per_label"].items()})

def save(res:dict, out, key:str, row:dict):
    res["results"][key] = row; res["date"] = time.strftime("%Y-%m-%d")
    print(key, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "per_label_pointing"}, flush=True)
    Path(out).write_text(json.dumps(res, indent=1))

def finetune_variant(name:str, tag:str, work=Path("runs/benchmark"), base=None, **overrides) -> tuple:
    """The quality benchmark's finetune of stand-in `name` (its settings: steps, batch, lr, seed, size; from diffmine-base)
    with `overrides` of `finetune`'s arguments, in work/<name>/model-<tag>; returns (model folder, seconds, root, records)."""
    st, s = SETTINGS, dataset_spec(name)
    root, recs = standins(work, (name,), st["size"], st["seed"], PER_LABEL)[name]
    kw = dict(base=str(BASE_MODEL) if base is None else base, resolution=st["size"], steps=st["steps"], batch_size=st["batch_size"],
              lr=st["lr"], cond_dropout=s.cond_dropout, checkpoint_every=100, seed=st["seed"], resume=True, dataset=name)
    t0 = time.time()
    ft = finetune(recs, Path(work)/name/f"model-{tag}", s.template, s.null_prompt, **{**kw, **overrides})
    return ft, round(time.time() - t0, 1), root, recs

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

def continue_from(src, dst, step:int=400):
    "Start model folder `dst` as a copy of `src`'s checkpoint at `step` and its train log, so a finetune resumes from there."
    src, dst = Path(src), Path(dst)
    if not any(dst.glob("checkpoint-*")):   # once: a finetune there keeps only its newest checkpoints (not `step`'s)
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src/f"checkpoint-{step}", dst/f"checkpoint-{step}")
        rows = (src/"train_log.csv").read_text().splitlines(keepends=True)   # the log up to `step` only
        (dst/"train_log.csv").write_text("".join(r for r in rows if not r[0].isdigit() or int(r.split(",")[0]) <= step))
    return dst
