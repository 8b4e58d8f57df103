#!/usr/bin/env bash
# The main job of README.md, for now: install what is missing, build, and run the teaching examples.
# (When the RLT trainer lands this becomes `glance demo`: train RLT on the built-in dataset.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGLANCE_CUDA="${CUDA:-AUTO}"
cmake --build "$build" -j "$(nproc)"
for example in "$build"/examples/[0-9][0-9]_*; do
  echo "=================== $(basename "$example") ==================="
  (cd "$build" && "$OLDPWD/$example")
done
