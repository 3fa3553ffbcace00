#!/usr/bin/env bash
# Execute notebooks in place the way CI runs them (quick, offline, mirror), so their saved
# outputs come from a real run. Usage: tools/execute.sh path/to/notebook.ipynb [...]
# Set ADL_QUICK=0 to execute in full mode (the book's configuration; written in place too, with no
# time limit per cell), and ADL_EXECUTE_OUT=DIR to write the executed copies there instead of in
# place (e.g. for full-mode runs you do not commit). Progress bars are saved as text (ADL_PLAIN_PROGRESS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
export ADL_QUICK="${ADL_QUICK-1}" ADL_OFFLINE="${ADL_OFFLINE-1}" ADL_PLAIN_PROGRESS=1
export ADL_DATA_MIRROR="${ADL_DATA_MIRROR-$(cd ../shared/datasets && pwd)}"
case "$ADL_QUICK" in
  0|false|no|off|"") timeout=-1 ;;  # full mode: some cells train for most of an hour on a CPU
  *) timeout=7200 ;;
esac
for nb in "$@"; do
  start=$(date +%s)
  if [ -n "${ADL_EXECUTE_OUT:-}" ]; then where=(--output-dir "$ADL_EXECUTE_OUT"); else where=(--inplace); fi
  .venv/bin/jupyter nbconvert --to notebook --execute "${where[@]}" --ExecutePreprocessor.timeout="$timeout" "$nb"
  echo "$nb: $(( $(date +%s) - start )) s (ADL_QUICK=$ADL_QUICK)"
done
