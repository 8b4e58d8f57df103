#!/usr/bin/env bash
# The main job of README.md: install what is missing, build, and run `glance demo`: train the RLT video
# transformer and a dense baseline with the same settings on the built-in dataset, then print one JSON
# line comparing them (accuracy, kept fraction, training clips/s, speedup). A few minutes on 2 cores.
#   scripts/demo.sh                      # the demo
#   scripts/demo.sh --steps 100          # extra arguments go to `glance demo` (see `glance demo --help`)
#   EXAMPLES=1 scripts/demo.sh           # also run the numbered teaching examples first
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGLANCE_CUDA="${CUDA:-AUTO}"
cmake --build "$build" -j "$(nproc)"
if [[ "${EXAMPLES:-0}" == 1 ]]; then
  for example in "$build"/examples/[0-9][0-9]_*; do
    echo "=================== $(basename "$example") ==================="
    (cd "$build" && "$OLDPWD/$example")
  done
fi
exec "$build/glance" demo "$@"
