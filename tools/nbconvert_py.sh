#!/usr/bin/env bash
# Developer convenience: turn a jupytext "percent" script into a clean nbdev notebook and export the library.
#   bash tools/nbconvert_py.sh path/to/NN_name.py nbs/NN_name.ipynb
# (Edit notebooks in JupyterLab, or round-trip them with `jupytext --to py:percent`.)
set -euo pipefail
BIN=${BIN:-.venv/bin}
"$BIN/jupytext" --quiet --to ipynb -o "$2" "$1"
"$BIN/python" - "$2" <<'PY'
import json, sys
p = sys.argv[1]; nb = json.load(open(p))
nb["metadata"] = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
json.dump(nb, open(p, "w"), indent=1, ensure_ascii=False); open(p, "a").write("\n")
PY
"$BIN/nbdev_clean" --fname "$2"
"$BIN/nbdev_export"
