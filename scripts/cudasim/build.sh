#!/bin/bash
# Builds the whole CUDA test suite of a glance checkout (tests/cuda/*.cpp) against cudasim: every kernel and the
# real CudaBackend, compiled as C++ and run on the CPU (README.md).
#   scripts/cudasim/build.sh [REPO] [BUILD]   -> scripts/cudasim/gen/test_sim   (defaults: this checkout, REPO/build)
# BUILD must hold libglance_{tensor,autograd,nn,rlt}.a of the same commit, from any CPU build, e.g.
#   cmake -S . -B build-cpu -DGLANCE_CUDA=OFF -DGLANCE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-cpu -j2 --target glance_rlt
# JOBS (default 2) compiles in parallel; incremental (make, with header dependencies). OUT names the binary.
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BUILD=$(cd "${2:-$REPO/build}" && pwd)
SIM=$(cd "$(dirname "$0")" && pwd)
GEN=$SIM/gen
for lib in rlt/libglance_rlt.a nn/libglance_nn.a autograd/libglance_autograd.a tensor/libglance_tensor.a; do
  [[ -f $BUILD/$lib ]] || { echo "build.sh: $BUILD/$lib is missing (build the CPU libraries first)" >&2; exit 1; }
done
python3 "$SIM/rewrite.py" "$REPO" "$GEN"
make -f "$SIM/Makefile" -j"${JOBS:-2}" REPO="$REPO" BUILD="$BUILD" GEN="$GEN" SIM="$SIM" OUT="$GEN/${OUT:-test_sim}"
echo "built $GEN/${OUT:-test_sim}"
