"""The documentation site (`make docs`, docs/build.py) on a few notebooks: built, every page opens in headless
Chromium with all its images loaded, every internal link and image resolves to a file of the site, and the API
reference documents the generated modules."""
import html.parser, re, shutil, subprocess, sys, tempfile
from pathlib import Path
from urllib.parse import urlsplit, unquote
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytest.importorskip("myst_nb", reason="docs packages not installed (make docs-deps installs them)")
pytest.importorskip("pydata_sphinx_theme", reason="docs packages not installed (make docs-deps installs them)")
NOTEBOOKS = "00_config,11_figures,12_gallery"     # prose, executed examples, a figure test and an HTML writer


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.refs = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("href", "src"):
            if a.get(k) and not (tag == "link" and a.get("rel") in ("preconnect", "dns-prefetch")): self.refs.append(a[k])


def _chromium(url):
    profile = tempfile.mkdtemp()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
           "--dump-dom", url]
    try: return subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    finally: shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    p = subprocess.run([sys.executable, str(ROOT/"docs"/"build.py"), "--out", str(out), "--only", NOTEBOOKS],
                       capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert not re.search(r"\b(WARNING|ERROR): ", p.stderr), p.stderr[-3000:]            # a clean Sphinx build
    return out/"html"


@pytest.mark.slow
def test_docs_pages_links_and_api(site):
    pages = sorted(p for p in site.rglob("*.html") if not p.relative_to(site).parts[0].startswith("_"))
    names = {p.relative_to(site).as_posix() for p in pages}
    assert {"index.html", "00_config.html", "11_figures.html", "12_gallery.html", "api/index.html", "api/data.html",
            "api/cli.html"} <= names, names
    broken = []
    for page in pages:
        parser = _Refs(); parser.feed(page.read_text(encoding="utf-8"))
        for ref in parser.refs:
            u = urlsplit(ref)
            if u.scheme or u.netloc or not u.path: continue                     # external, or on the same page
            target = (page.parent/unquote(u.path)).resolve()
            if not target.exists(): broken.append(f"{page.relative_to(site)} -> {ref}")
    assert not broken, broken[:20]
    text = (site/"11_figures.html").read_text(encoding="utf-8")
    assert "Labels in any script" in text and "test_eq" in text and "nbdev_export()" not in text   # the export cell is gone
    assert "T &lt;= 0" in text or "LABEL_FONTS" in text
    api = (site/"api"/"data.html").read_text(encoding="utf-8")
    assert "load_imagefolder" in api and "require_labels" in api


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make install installs it when run as root)")
def test_docs_pages_render_in_headless_chromium(site):
    for name in ["index.html", "11_figures.html", "12_gallery.html", "api/index.html", "api/figures.html"]:
        dom = _chromium((site/name).as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        m = re.search(r'data-images-ok="(\d+)" data-images="(\d+)"', dom.stdout)
        assert m, f"{name}: the page's load check did not run"
        ok, total = map(int, m.groups())
        assert ok == total, f"{name}: {ok} of {total} images loaded"
        assert "<article" in dom.stdout and len(re.sub(r"<[^>]+>", "", dom.stdout)) > 500, name
