#!/usr/bin/env bash
# Render README.md from nbs/index.ipynb to stdout (Quarto cannot be installed here, so nbdev_readme does not run).
# nbdev directives (#| ...) are dropped and hidden cells skipped.
set -euo pipefail
BIN=${1:-.venv/bin}
"$BIN/python" - <<'PY'
import nbformat, re
from nbconvert import MarkdownExporter
nb = nbformat.read('nbs/index.ipynb', as_version=4)
cells = []
for c in nb.cells:
    src = c.source
    if c.cell_type == 'code':
        if re.search(r'^#\|\s*hide\b', src, re.M): continue
        c.source = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
    cells.append(c)
nb.cells = cells
body, _ = MarkdownExporter().from_notebook_node(nb)
print("<!-- Generated from nbs/index.ipynb by `make sync`: edit the notebook, not this file. -->\n")
print(re.sub(r'\n{3,}', '\n\n', body).strip())
PY
