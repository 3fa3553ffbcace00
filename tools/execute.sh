#!/usr/bin/env bash
# Execute notebooks in place the way CI runs them (quick, offline, mirror), so their saved
# outputs come from a real run. Usage: tools/execute.sh path/to/notebook.ipynb [...]
# Set ADL_QUICK=0 to execute in full mode instead, and ADL_EXECUTE_OUT=DIR to write the
# executed copies there instead of in place (e.g. for full-mode runs you do not commit).
set -euo pipefail
cd "$(dirname "$0")/.."
export ADL_QUICK="${ADL_QUICK-1}" ADL_OFFLINE="${ADL_OFFLINE-1}"
export ADL_DATA_MIRROR="${ADL_DATA_MIRROR-$(cd ../shared/datasets && pwd)}"
for nb in "$@"; do
  start=$(date +%s)
  if [ -n "${ADL_EXECUTE_OUT:-}" ]; then where=(--output-dir "$ADL_EXECUTE_OUT"); else where=(--inplace); fi
  .venv/bin/jupyter nbconvert --to notebook --execute "${where[@]}" --ExecutePreprocessor.timeout=7200 "$nb"
  echo "$nb: $(( $(date +%s) - start )) s"
done
