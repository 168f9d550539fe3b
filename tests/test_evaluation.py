"""Ground-truth metrics on a real planted stand-in: oracle maps (the ground truth itself) must score perfectly, flipped
and random maps at chance or below; the paper's AUC-PR against scikit-learn's; the classifier on shared draws; the
Fashion-MNIST exporter. (The quality benchmark's settings: tests/test_benchmark_notebooks.py.)"""
import numpy as np, pandas as pd, pytest, torch
from sklearn.metrics import precision_recall_curve

from diffmine.config import AUCPR_THRESHOLDS
from diffmine.synth import make_standin, load_groundtruth
from diffmine.patches import mine_patches
from diffmine.testing import fake_run, ScaledOracle
from diffmine.evaluation import (auc_pr, localisation, patch_quality, patch_kinds, cluster_quality, classifier_accuracy,
                                 label_area)


@pytest.fixture(scope="module")
def cars(tmp_path_factory):
    root = make_standin("cars", tmp_path_factory.mktemp("cars"), n_per_label=5, size=32, seed=0)
    return root, load_groundtruth(root)


def _run(tmp_path, gt, value):
    "A typicality run whose maps are `value(rel, label)`."
    items = [(rel, gt.label_of(rel), value(rel, gt.label_of(rel))) for rel in gt.rels]
    return fake_run(tmp_path/"run", items, dataset="cars")


def test_oracle_maps_score_perfectly(cars, tmp_path):
    root, gt = cars
    # inside the elements the oracle's typicality spans the paper's thresholds (0.02 down to 2e-7), so the
    # precision-recall curve is traced from recall ~0 (the authors' trapezoid adds no point at recall 0)
    graded = lambda shape: 10.0 ** -np.linspace(1.71, 6.6, int(np.prod(shape))).reshape(shape)
    run = _run(tmp_path, gt, lambda rel, lab: np.where(gt.label_mask(rel, lab), graded(gt.mask(rel).shape), -0.01))
    df, s = localisation(run, root)
    assert s["auc_pr"] == pytest.approx(1.0, abs=0.05) and s["ap"] == pytest.approx(1.0)
    assert s["pointing"] == 1.0 and s["hit"] == 1.0
    assert set(s["per_label"]) <= set(gt.labels) and len(s["per_label"]) >= 6
    patches = mine_patches(run, patch=6, top=None, seed=0)
    q = patch_quality(patches, root, k=5)                     # the best patch of each of the 5 images per label
    area = np.mean(list(label_area(root).values()))
    assert q["T"]["precision"] > 0.8 and q["T"]["hit"] > 0.8 and q["T"]["shared_rate"] == 0.0
    assert q["-T"]["precision"] < 0.05
    q20 = patch_quality(patches, root, k=20)                  # 20 of 25 patches: the oracle's ceiling drops
    assert q20["T"]["precision"] < q["T"]["precision"]
    assert abs(q20["rand"]["precision"] - area) < 0.1          # Rand. sits near the element area fraction
    assert q["T"]["precision"] > q["rand"]["precision"] > q["-T"]["precision"]


def test_flipped_and_flat_maps_score_low(cars, tmp_path):
    root, gt = cars
    flip = _run(tmp_path/"flip", gt, lambda rel, lab: np.where(gt.label_mask(rel, lab), -0.01, 0.01))
    _, s = localisation(flip, root)
    assert s["auc_pr"] < 0.3 and s["pointing"] == 0.0 and s["hit"] == 0.0
    flat = _run(tmp_path/"flat", gt, lambda rel, lab: np.full(gt.mask(rel).shape, -1.0))
    _, s = localisation(flat, root)
    assert s["auc_pr"] == 0.0                                 # nothing exceeds the paper's thresholds


def test_shared_elements_count_when_they_are_typical(cars, tmp_path):
    root, gt = cars
    run = _run(tmp_path, gt, lambda rel, lab: np.where(gt.shared_mask(rel), 0.01, -0.01))
    q = patch_quality(mine_patches(run, patch=6, top=None, seed=0), root, k=20)
    assert q["T"]["shared_rate"] > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_pr_equals_the_trapezoid_of_the_exact_curve_when_thresholds_are_the_values(seed):
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.001, 0.01, 200); y = rng.uniform(size=200) < 0.3
    ours = auc_pr(m, y, thresholds=np.unique(m) - 1e-12)      # a threshold just below every value
    p, r, _ = precision_recall_curve(y, m)
    p, r = p[::-1], r[::-1]                                   # recall increasing
    # sklearn's curve ends with an artificial (recall 0, precision 1) point; the authors' trapezoid (and ours)
    # integrates the thresholds' points only
    ref = float(np.trapezoid(p[1:], r[1:]))
    assert ours == pytest.approx(ref, abs=1e-9)


def test_paper_thresholds():
    t = np.asarray(AUCPR_THRESHOLDS)
    assert len(t) == 1000 and t[0] == pytest.approx(0.02) and t[-1] == pytest.approx(2e-7)
    np.testing.assert_allclose(t, 2 * 10 ** -np.linspace(2, 7, 1000))


def test_cluster_quality_on_kind_clusters(cars, tmp_path):
    root, gt = cars
    run = _run(tmp_path, gt, lambda rel, lab: np.where(gt.label_mask(rel, lab), 0.01, -0.01))
    p = mine_patches(run, patch=6, top=None, seed=0, rankings=("T",))
    kinds = patch_kinds(p, gt).kind
    perfect = cluster_quality(p.assign(cluster=kinds.values), root)
    assert perfect["purity"] == 1.0 and perfect["nmi"] == pytest.approx(1.0)
    one = cluster_quality(p.assign(cluster=0), root)
    assert one["nmi"] == pytest.approx(0.0) and one["purity"] < 1.0


def test_classifier_picks_the_label_the_model_prefers(tmp_path, tiny_model):
    from diffmine.typicality import label_typicality
    m = tiny_model
    x0 = torch.randn(1, 3, 16, 16)
    target = {"An image of a.": 1.0, "An image of b.": 0.2, "An image of c.": 0.6, "": 0.0}
    m.unet = ScaledOracle(m, x0, target)
    T, used = label_typicality(m, x0, list(target)[:3], "", n=12, batch_size=5)
    assert T.argsort(descending=True).tolist() == [0, 2, 1] and used.tolist() == [12, 12, 12]
    T2, used2 = label_typicality(m, x0, list(target)[:3], "", n=12, batch_size=5, prune=(3, 2))
    assert used2.tolist() == [12, 3, 12] and torch.allclose(T2[[0, 2]], T[[0, 2]], atol=1e-5)
    acc = classifier_accuracy(pd.DataFrame(dict(label=["a", "b", "a, c"], pred=["a", "a", "c"])))
    assert acc["accuracy"] == pytest.approx(2 / 3) and acc["per_label"]["b"]["accuracy"] == 0.0


def test_fashion_mnist_export(tmp_path):
    from diffmine.config import FASHION_DIR
    from diffmine.data import export_fashion_mnist, load_fashion_mnist, FASHION_CLASSES
    from diffmine.data import load_records
    if not FASHION_DIR.exists(): pytest.skip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,) and np.bincount(y).tolist() == [1000] * 10
    root = export_fashion_mnist(tmp_path/"fm", "test", per_class=3)
    recs = load_records(root)
    assert len(recs) == 30 and {r.label for r in recs} == set(FASHION_CLASSES)
    r0 = next(r for r in recs if r.rel.endswith("test-00000.png"))
    assert r0.label == FASHION_CLASSES[y[0]]
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(r0.path)), x[0])
