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
for name, kw in [("n12p43_t17", dict(n=12, prune=(4, 3))), ("n40_t17", dict(n=40)), ("n40_t01", dict(n=40, t_range=(0.0, 1.0)))]:
    t0 = time.time()
    s = classify_records(model, sub, list(FASHION_CLASSES), out/f"{name}.csv", **kw)
    a = classifier_accuracy(s)["accuracy"]; res[name] = dict(acc=a, seconds=time.time() - t0)
    print(name, res[name], flush=True)
json.dump(dict(command=f"python tools/fashion_classifier_probe.py {sys.argv[1]}", model="runs/benchmark/fashion/model", images=len(sub), results=res), open("figures/benchmark/fashion_probe.json", "w"), indent=1)
