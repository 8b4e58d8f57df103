#!/usr/bin/env bash
# The test command of README.md: installs what is missing, builds (Release, CPU tuning on, CUDA when
# nvcc is found), and runs the whole GoogleTest suite and the examples (Example.*) through ctest.
#   scripts/test.sh                 # build/ with the default options
#   BUILD=build-asan SANITIZE=ON NATIVE=OFF MPI=OFF scripts/test.sh   # the sanitizer run of .ci/run
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DGLANCE_SANITIZE="${SANITIZE:-OFF}" -DGLANCE_NATIVE="${NATIVE:-ON}" -DGLANCE_CUDA="${CUDA:-AUTO}" \
  -DGLANCE_BUILD_BENCH="${BENCH:-ON}" -DGLANCE_MPI="${MPI:-AUTO}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
