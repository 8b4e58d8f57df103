#!/bin/bash
# Builds the fused-attention tests of a glance worktree against cudasim (CPU emulation of the kernels).
#   scripts/cudasim/build.sh [REPO] [BUILD]   -> scripts/cudasim/gen/test_sim   (defaults: this checkout, REPO/build)
# Needs BUILD with libglance_{tensor,autograd,nn}.a built (any CPU build of the same commit).
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BUILD=${2:-$REPO/build}
SIM=$(cd "$(dirname "$0")" && pwd)
GEN=$SIM/gen
mkdir -p "$GEN"
for f in fused_forward_fp32 fused_backward_fp32 fused_forward_bf16 fused_backward_bf16; do
  python3 - "$REPO/cuda/attention/$f.cu" "$GEN/$f.cpp" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = s.replace('extern __shared__ float smem[];', 'float* smem = reinterpret_cast<float*>(::sim::shared_memory());')
s = s.replace('extern __shared__ __align__(128) unsigned char smem[];', 'unsigned char* smem = ::sim::shared_memory();')
s, n = re.subn(r'([\w:]+(?:<[^;<>]*>)?)<<<(.*?)>>>\((.*?)\);', r'::sim::launch(\2, [&] { \1(\3); });', s, flags=re.S)
assert n > 0, sys.argv[1]
open(sys.argv[2], 'w').write('#line 1 "%s"\n' % sys.argv[1] + s)
PY
done
cat > "$GEN/device_query_sim.cpp" <<'CPP'
#include "cuda/device_query.h"
namespace glance::cuda {
int device_count() { return 1; }
bool available() { return true; }
}
CPP
FLAGS="-std=c++20 -O3 -march=native -g -fopenmp -I$SIM/include -I$REPO -I$REPO/tests -Wall -Wno-unused-parameter -Wno-unknown-pragmas"
objs=()
for src in "$GEN"/fused_forward_fp32.cpp "$GEN"/fused_backward_fp32.cpp "$GEN"/fused_forward_bf16.cpp "$GEN"/fused_backward_bf16.cpp \
           "$REPO"/cuda/attention/fused_attention.cpp "$REPO"/cuda/attention/fused_attention_op.cpp \
           "$GEN"/device_query_sim.cpp "$SIM"/backend_sim.cpp "$REPO"/tests/cuda/test_fused_attention.cpp; do
  o="$GEN/${OUT:-test_sim}_$(basename "${src%.*}").o"
  g++ $FLAGS -c "$src" -o "$o" &
  objs+=("$o")
  if (( ${#objs[@]} % 2 == 0 )); then wait; fi
done
wait
g++ -fopenmp -o "$GEN/${OUT:-test_sim}" "${objs[@]}" "$BUILD/nn/libglance_nn.a" "$BUILD/autograd/libglance_autograd.a" \
  "$BUILD/tensor/libglance_tensor.a" -lgtest -lgtest_main -lpthread
echo "built $GEN/${OUT:-test_sim}"
