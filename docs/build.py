"""Build the documentation site (`make docs`): every library notebook of nbs/ and every experiment notebook of
nbs/experiments/, executed at smoke size (their default parameters, in their own folder, as nbdev_test runs them),
plus an API reference of the generated modules, rendered by Sphinx + myst-nb into a static folder.

    python docs/build.py [--out _docs] [--only 00_config,cars] [--no-execute]

Executed notebooks are cached under OUT/executed/ by the hash of their source, so a rebuild runs only what changed.
Cells nbdev's tests skip (`#|notest`, `#|slow`, `#|gpu`) are not run, and the notebooks' last `nbdev_export` cell is
neither run nor shown. A notebook that fails stops the build, naming the notebook and the cell."""
from __future__ import annotations
import argparse, hashlib, json, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/"nbs"
SKIP_FLAGS = ("notest", "slow", "gpu")     # settings.ini tst_flags: cells nbdev_test leaves out
CELL_TIMEOUT = 900                         # seconds one cell may take


def _flags(src:str) -> set:
    "The nbdev directives of a cell (`#|hide`, `#| export`...), lower case."
    return {m.group(1).lower() for m in re.finditer(r"^#\|\s*([A-Za-z_]+)", src, re.M)}


def _is_export_call(src:str) -> bool: return "nbdev_export()" in src and "nbdev" in src.split("\n", 1)[0] + src


def notebooks() -> list[Path]:
    "The library notebooks (index first) and the experiment notebooks."
    lib = sorted(p for p in NBS.glob("*.ipynb") if p.name != "index.ipynb")
    return [NBS/"index.ipynb", *lib, *sorted((NBS/"experiments").glob("*.ipynb"))]


def _digest(nb_path:Path) -> str:
    h = hashlib.sha1(nb_path.read_bytes())
    for f in sorted((ROOT/"diffmine").glob("*.py")): h.update(f.read_bytes())   # the library its examples run
    return h.hexdigest()


def execute(nb_path:Path, cache:Path) -> dict:
    "The notebook executed in its own folder (cached by the hash of it and the library), as a notebook dict."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    key = _digest(nb_path)
    f = cache/f"{nb_path.relative_to(NBS).as_posix().replace('/', '__')}"
    if f.exists():
        nb = json.loads(f.read_text())
        if nb.get("metadata", {}).get("diffmine_docs", {}).get("source_sha1") == key: return nb
    nb = nbformat.read(nb_path, as_version=4)
    skipped = []
    for c in nb.cells:
        if c.cell_type != "code": continue
        if _flags(c.source) & set(SKIP_FLAGS) or _is_export_call(c.source):
            skipped.append(c); c.metadata["diffmine_skip"] = True
    keep = [c for c in nb.cells if not c.metadata.get("diffmine_skip")]
    run = nbformat.v4.new_notebook(cells=keep, metadata=nb.metadata)
    t0 = time.time()
    client = NotebookClient(run, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}})
    try: client.execute()
    except CellExecutionError as e:
        raise SystemExit(f"docs: {nb_path.relative_to(ROOT)}: a cell failed: {str(e).splitlines()[-1][:300]}\n"
                         f"  -> fix the notebook (nbdev_test --path {nb_path.relative_to(ROOT)} shows the same), then rerun make docs")
    by_id = {c.get("id"): c for c in run.cells}
    nb.cells = [by_id.get(c.get("id"), c) for c in nb.cells]
    nb.metadata["diffmine_docs"] = dict(source_sha1=key, seconds=round(time.time() - t0, 1))
    cache.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(nb, ensure_ascii=False))
    print(f"docs: executed {nb_path.relative_to(ROOT)} in {time.time() - t0:.0f} s", flush=True)
    return nb


def _for_page(nb:dict) -> dict:
    "A notebook as a page shows it: nbdev's hidden and bookkeeping cells removed, skipped cells shown without output."
    cells = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        flags = _flags(src) if c["cell_type"] == "code" else set()
        if c["cell_type"] == "code" and ("hide" in flags or "default_exp" in flags or _is_export_call(src)): continue
        if c["cell_type"] == "code":
            c = {**c, "source": "\n".join(l for l in src.split("\n") if not re.match(r"^#\|\s*export", l))}
        cells.append(c)
    return {**nb, "cells": cells}


_LINK = re.compile(r"\]\(([^)\s#:]+)(?:#[^)]*)?\)|src=[\"']([^\"':]+)[\"']")

RAW = []   # files raw HTML (<img src=...>) refers to: Sphinx does not copy them, build() does, beside the page

def _copy_linked(text:str, base:Path, src:Path, at:Path, pages:list):
    "Copy the repository files markdown `text` links to (figures, READMEs) into the site, where the link expects them."
    for m in _LINK.finditer(text):
        rel = m.group(1) or m.group(2)
        f = (base/rel).resolve()
        if rel.endswith(".ipynb") or not f.is_file() or ROOT not in f.parents: continue
        dest = (at/rel).resolve()
        if m.group(2) and src.resolve() in dest.parents: RAW.append(dest.relative_to(src.resolve()))
        if src.resolve() not in dest.parents or dest.exists(): continue
        dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, dest)
        if dest.suffix == ".md":                                   # a page of its own, with its own links
            pages.append(dest.relative_to(src.resolve()).with_suffix("").as_posix())
            _copy_linked(f.read_text(encoding="utf-8", errors="replace"), f.parent, src, dest.parent, pages)


def _markdown(nb:dict) -> str:
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "markdown")


def _api_pages(src:Path) -> list[str]:
    "One page per generated module: its docstring, then autodoc of its public names."
    names = []
    for f in sorted((ROOT/"diffmine").glob("*.py")):
        if f.stem.startswith("_"): continue
        (src/"api").mkdir(exist_ok=True)
        (src/"api"/f"{f.stem}.md").write_text(f"# diffmine.{f.stem}\n\n```{{eval-rst}}\n.. automodule:: diffmine.{f.stem}\n"
                                              "   :members:\n   :undoc-members:\n```\n")
        names.append(f"api/{f.stem}")
    return names


def stage(src:Path, only:set|None, run:bool, cache:Path) -> list[Path]:
    "Write the Sphinx source folder: the notebooks (executed unless `run` is False), API pages and the tree."
    if src.exists(): shutil.rmtree(src)
    (src/"experiments").mkdir(parents=True)
    import nbformat
    lib, exp, staged, other = [], [], [], []
    for p in notebooks():
        if only and p.stem not in only and p.name != "index.ipynb": continue
        nb = execute(p, cache) if run and p.name != "index.ipynb" else json.loads(p.read_text())
        rel = p.relative_to(NBS)
        (src/rel).write_text(json.dumps(_for_page(nb), ensure_ascii=False))
        _copy_linked(_markdown(nb), ROOT if p.name == "index.ipynb" else p.parent, src, (src/rel).parent, other)  # index: as the README
        staged.append(rel)
        if p.name == "index.ipynb": continue
        (exp if rel.parts[0] == "experiments" else lib).append(rel.with_suffix("").as_posix())
    api = _api_pages(src)
    tree = lambda caption, items: (f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n:hidden:\n\n" + "\n".join(items) + "\n```\n")
    index = json.loads((src/"index.ipynb").read_text())
    index["cells"].append(nbformat.v4.new_markdown_cell(
        "## Contents\n\n" + "".join(f"- [{n}]({n}.ipynb)\n" for n in lib + exp) + "- [API reference](api/index.md)\n\n" +
        tree("Library notebooks", lib) + tree("Experiments", exp) + tree("Reference", ["api/index", *other])))
    (src/"index.ipynb").write_text(json.dumps(index, ensure_ascii=False))
    (src/"api"/"index.md").write_text("# API reference\n\nThe modules `nbdev_export` generates from the notebooks.\n\n" +
                                      tree("Modules", [a.removeprefix("api/") for a in api]).replace(":hidden:\n", "") )
    shutil.copytree(ROOT/"docs"/"_static", src/"_static")
    return staged


def main(argv=None):
    ap = argparse.ArgumentParser(prog="docs/build.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT/"_docs"), help="where the site (OUT/html) and the caches go (default: _docs)")
    ap.add_argument("--only", default=None, help="comma-separated notebook names (e.g. 00_config,cars); default: all")
    ap.add_argument("--no-execute", action="store_true", help="render the notebooks as committed (without outputs)")
    args = ap.parse_args(argv)
    out = Path(args.out).absolute()
    only = {s.strip().removesuffix(".ipynb") for s in args.only.split(",") if s.strip()} if args.only else None
    if only:
        unknown = only - {p.stem for p in notebooks()}
        if unknown: raise SystemExit(f"docs: --only {','.join(sorted(unknown))}: no such notebook\n  -> use names of "
                                     "nbs/*.ipynb or nbs/experiments/*.ipynb, without .ipynb")
    stage(out/"src", only, not args.no_execute, out/"executed")
    from sphinx.cmd.build import build_main
    html = out/"html"
    code = build_main(["-b", "html", "-q", "-c", str(ROOT/"docs"), str(out/"src"), str(html)])
    if code: raise SystemExit(f"docs: sphinx-build failed (exit {code}); its messages are above")
    for rel in RAW:
        (html/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(out/"src"/rel, html/rel)
    print(f"docs: {html/'index.html'}")
    return html


if __name__ == "__main__": main()
