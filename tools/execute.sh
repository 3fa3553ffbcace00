#!/usr/bin/env bash
# Execute notebooks in place the way CI runs them (quick, offline, mirror), so their saved
# outputs come from a real run. Usage: tools/execute.sh path/to/notebook.ipynb [...]
# Set ADL_QUICK=0 to execute in full mode instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export ADL_QUICK="${ADL_QUICK-1}" ADL_OFFLINE="${ADL_OFFLINE-1}"
export ADL_DATA_MIRROR="${ADL_DATA_MIRROR-$(cd ../shared/datasets && pwd)}"
for nb in "$@"; do
  start=$(date +%s)
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=3600 "$nb"
  echo "$nb: $(( $(date +%s) - start )) s"
done
