# Fashion-MNIST typicality-as-classifier probe: the quality benchmark's finetuned model (runs/benchmark/fashion/model), K test
# images per class (balanced), three estimator settings. Run: .venv/bin/python tools/fashion_classifier_probe.py K
import sys, json, time
from pathlib import Path
from diffmine.models import load_model
from diffmine.data import load_records, FASHION_CLASSES
from diffmine.typicality import classify_records, balanced
from diffmine.evaluation import classifier_accuracy
model = load_model("runs/benchmark/fashion/model", device="cpu")
test = load_records(Path("runs/benchmark/data/fashion-test"))
sub = balanced(test, int(sys.argv[1]) * 10)
out = Path("runs/fashion-probe"); out.mkdir(exist_ok=True)
res = {}
for name, kw in [("n12p43_t17", dict(n=12, prune=(4, 3), t_range=(0.1, 0.7))), ("n40_t17", dict(n=40, t_range=(0.1, 0.7))), ("n40_t01", dict(n=40, t_range=(0.0, 1.0)))]:
    t0 = time.time()
    s = classify_records(model, sub, list(FASHION_CLASSES), out/f"{name}.csv", **kw)
    a = classifier_accuracy(s)["accuracy"]; res[name] = dict(acc=a, seconds=time.time() - t0)
    print(name, res[name], flush=True)
SETTINGS = {"n12p43_t17": "12 draws, pruning (4, 3), t in [100, 700) (the benchmark's)", "n40_t17": "40 draws, no pruning, t in [100, 700)",
            "n40_t01": "40 draws, no pruning, t in [0, 1000)"}
json.dump(dict(command=f"python tools/fashion_classifier_probe.py {sys.argv[1]}", date=time.strftime("%Y-%m-%d"),
               model="runs/benchmark/fashion/model (diffmine-base finetuned 2000 steps, batch 32, EMA)", images=len(sub),
               settings=SETTINGS, results={k: dict(acc=v["acc"], seconds=round(v["seconds"], 1)) for k, v in res.items()},
               note=f"{len(sub)} test images ({len(sub) // 10} per class): standard error about {(0.25 / len(sub)) ** 0.5:.2f} per accuracy"),
          open("figures/benchmark/fashion_probe.json", "w"), indent=1)
