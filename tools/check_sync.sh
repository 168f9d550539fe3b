#!/usr/bin/env bash
# CI guard: the library is the export of nbs/, notebooks are clean, README.md is the render of nbs/index.ipynb.
# Runs the tools on the working tree and fails when any of them changed a file (the fixed files are left in place).
set -uo pipefail
BIN=${1:-.venv/bin}
snap() { find diffmine nbs -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 sha1sum; }
before=$(snap)
"$BIN/nbdev_export" || { echo "nbdev_export failed"; exit 1; }
"$BIN/nbdev_clean" || { echo "nbdev_clean failed"; exit 1; }
after=$(snap)
status=0
if [ "$before" != "$after" ]; then
  echo "ERROR: nbdev_export/nbdev_clean changed these files (library out of sync with nbs/, or notebooks not clean):"
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "   ", $3}' | sort -u
  echo "They are fixed in your working tree now: review and commit them."
  status=1
fi
if ! diff -q <(bash tools/render_readme.sh "$BIN") README.md >/dev/null; then
  echo "ERROR: README.md is not the render of nbs/index.ipynb: run 'make sync' and commit README.md."
  status=1
fi
[ $status -eq 0 ] && echo "sync check: library, notebooks and README are in sync"
exit $status
