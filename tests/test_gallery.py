"""The HTML gallery opened in headless Chromium: every image renders (naturalWidth > 0) and a screenshot is taken."""
import re, shutil, subprocess, tempfile
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from diffmine.gallery import write_gallery

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _clustered_run(root: Path, labels=("1950", "1960"), per_label=7):
    rng = np.random.default_rng(0)
    rows = []
    for lab in labels:
        for i in range(per_label):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            p = root/"data"/lab/f"img {i}.png"; p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
            x0, y0 = int(rng.integers(0, 48)), int(rng.integers(0, 32))
            rows.append(dict(key=f"{lab}-{i}", rel=f"{lab}/img {i}.png", path=str(p), label=lab, x0=x0, y0=y0,
                             x1=x0 + 16, y1=y0 + 16, typicality=float(rng.normal()), rank=i + 1, ranking="T",
                             cluster=i % 3, cluster_rank=i % 3 + 1, member_rank=i // 3 + 1, distance=0.1 * i,
                             cluster_size=3, cluster_median=float(-i % 3)))
    pd.DataFrame(rows).to_csv(root/"clusters.csv", index=False)
    return root


def _chromium(*args):
    profile = tempfile.mkdtemp()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
    try: return subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    finally: shutil.rmtree(profile, ignore_errors=True)


def test_gallery_pages_are_self_contained(tmp_path):
    index = write_gallery(_clustered_run(tmp_path))
    pages = sorted(p.name for p in index.parent.glob("*.html"))
    assert pages == ["1950.html", "1960.html", "index.html"]
    page = (index.parent/"1950.html").read_text()
    assert page.count("Cluster #") == 3
    assert not re.search(r"(src|href)=['\"]https?:", page)
    # clusters appear in rank order, members nearest first
    assert page.index("Cluster #1") < page.index("Cluster #2") < page.index("Cluster #3")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make install installs it when run as root)")
def test_gallery_renders_in_headless_chromium(tmp_path):
    index = write_gallery(_clustered_run(tmp_path))
    for page in ["index.html", "1950.html"]:
        url = (index.parent/page).as_uri()
        dom = _chromium("--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        m = re.search(r'data-images-ok="(\d+)" data-images="(\d+)"', dom.stdout)
        assert m, f"the page's load check did not run: {dom.stdout[-500:]}"
        ok, total = map(int, m.groups())
        assert ok == total and (total == 0 if page == "index.html" else total == 7)
    shot = tmp_path/"gallery.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1000,800", (index.parent/"1950.html").as_uri())
    assert r.returncode == 0 and shot.exists()
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (800, 1000) and img.std() > 10      # not a blank page
