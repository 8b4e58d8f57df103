#!/usr/bin/env bash
# The one script a GPU session runs: build with CUDA, run the CUDA tests and every GPU benchmark, and write
# the logs, the JSON lines and a summary under ${OUT:-out}/. Made for the device tool of this workplace
# (/work/.library/device/README.md): each stage is one call and ends inside its 10-minute limit.
#
#   scripts/gpu_session.sh deps        HERE, on the machine without a GPU: copies GoogleTest and stb (which
#                                      the GPU machine lacks and cannot download) into build-gpu-deps/
#   scripts/gpu_session.sh build       configure + build test_cuda and the GPU benchmarks in build-gpu/
#   scripts/gpu_session.sh test        test_cuda (every test), then compute-sanitizer memcheck on a subset
#   scripts/gpu_session.sh bench       bench_cuda_ops; the RLT training step (small model), glance and PyTorch
#   scripts/gpu_session.sh attention   bench_attention_cuda and bench/attention_torch.py
#   scripts/gpu_session.sh bench-base  the training step at ViT-B's size (preset base), glance and PyTorch
#   scripts/gpu_session.sh demo        the main job on the GPU: glance demo --device cuda (RLT vs dense)
#   scripts/gpu_session.sh all         all of the above in order (longer than one call)
#   scripts/gpu_session.sh summary DIR...   (anywhere) the markdown tables of the JSON lines found in DIRs
#
# A stage finds the binaries from an earlier `build` when the machine stayed warm (the device tool keeps
# ignored build outputs between calls while the machine is held); otherwise it builds them first, so every
# stage works on a fresh machine too (a build then shares the stage's time). Device-tool calls, in order:
#
#   run(command="scripts/gpu_session.sh build",     carry=["build-gpu-deps"], timeout_s=600)
#   run(command="scripts/gpu_session.sh test",      carry=["build-gpu-deps"], timeout_s=600)
#   run(command="scripts/gpu_session.sh bench",     carry=["build-gpu-deps"], timeout_s=600)
#   run(command="scripts/gpu_session.sh attention", carry=["build-gpu-deps"], timeout_s=600)
#   run(command="scripts/gpu_session.sh bench-base", carry=["build-gpu-deps"], timeout_s=600)
#
# (`carry` re-sends build-gpu-deps/ but leaves build-gpu/ on a warm machine alone.) Each call's files come
# back from $OUT (at most 8 files per call: a stage writes fewer, or packs them into one .tar.gz); then
# `scripts/gpu_summary.py DIR...` here joins the calls' files into one table for docs/performance/.
#
# Environment: OUT (default out/), GLANCE_COMMIT (the commit to record where the copy has no .git),
# GPU_SESSION_BUDGET_S (seconds a stage may take, default 570: steps that would not fit are skipped and
# say so), GPU_SESSION_REBUILD=1 (build even when the binaries exist), SANITIZER_FILTER (gtest filter for
# compute-sanitizer), BUILD_DIR (default build-gpu).
#
# It only reads the GPU's state (nvidia-smi queries): it never changes clocks, power, compute mode, MIG,
# persistence, and never resets the device.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
OUT=${OUT:-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUILD=${BUILD_DIR:-build-gpu}
DEPS=build-gpu-deps
BUDGET=${GPU_SESSION_BUDGET_S:-570}
START=$(date +%s)
TARGETS=(test_cuda bench_cuda_ops bench_train_step bench_attention_cuda glance)
SANITIZER_FILTER=${SANITIZER_FILTER:-'CudaFused.*:CudaRows.*:CudaReduce.LargeReductionsTakeTheSlicedPath:CudaIndexing.*:CudaAutograd.*:CudaMatmul.BroadcastBatchAndVectors:FusedAttentionCuda.ForwardFp32EdgeLengths:FusedAttentionCuda.VarlenPackEqualsEachClipAlone:FusedAttentionCuda.BackwardFp32MatchesTiledCpuGradients:FusedAttentionKernel.*'}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

say() { echo "[gpu_session $(date +%H:%M:%S) +$(($(date +%s) - START))s] $*" >&2; }
left() { echo $((BUDGET - ($(date +%s) - START))); }

# run_step NAME CAP_S LOG CMD...: runs CMD under `timeout` (the smaller of CAP_S and the time left minus a
# margin), stdout+stderr appended to LOG; skipped when less than 20 s would be left. Returns CMD's status.
run_step() {
  local name=$1 cap=$2 log=$3
  shift 3
  local t
  t=$(left)
  t=$((t - 15))
  if ((t > cap)); then t=$cap; fi
  if ((t < 20)); then
    say "SKIPPED $name: not enough time left in this stage ($(left) s)"
    echo "SKIPPED $name: not enough time left" >>"$log"
    return 124
  fi
  say "$name (limit ${t}s)"
  echo "==== $name: $* (limit ${t}s)" >>"$log"
  timeout --kill-after=10 "$t" "$@" >>"$log" 2>&1
  local rc=$?
  echo "==== $name: exit $rc" >>"$log"
  if ((rc == 124 || rc == 137)); then say "$name: TIMED OUT after ${t}s"; elif ((rc != 0)); then say "$name: exit $rc"; fi
  return $rc
}

commit() {
  if [[ -n "${GLANCE_COMMIT:-}" ]]; then echo "$GLANCE_COMMIT"; return; fi
  git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown
}

# The machine, read only: nvidia-smi queries, compiler and library versions, this commit.
write_env() {
  local f=$OUT/env.txt
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(commit)$(git -C "$here" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
    echo "host: $(uname -srm), $(nproc) cores"
    echo "--- nvidia-smi --query-gpu"
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,persistence_mode,compute_mode,mig.mode.current --format=csv 2>&1
    echo "--- nvidia-smi"
    nvidia-smi 2>&1
    echo "--- nvcc"
    nvcc --version 2>&1 | tail -n 2
    echo "--- cmake: $(cmake --version 2>&1 | head -n 1); ninja: $(ninja --version 2>&1)"
    echo "--- python: $($PY --version 2>&1), torch: $($PY -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -n 1)"
    echo "--- compute-sanitizer: $(sanitizer 2>/dev/null || echo none)"
  } >"$f" 2>&1
}

sanitizer() {
  command -v compute-sanitizer 2>/dev/null && return 0
  local c
  for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [[ -x $c ]] && echo "$c" && return 0
  done
  return 1
}

# ---- deps: run on the machine WITHOUT a GPU -----------------------------------------------------------------
# GoogleTest (static libraries, headers, CMake package) and the stb headers from this machine's Debian packages
# (libgtest-dev, libstb-dev), laid out as an install prefix that CMAKE_PREFIX_PATH can point at.
stage_deps() {
  local multi=lib/x86_64-linux-gnu
  rm -rf "$DEPS"
  mkdir -p "$DEPS/include" "$DEPS/$multi/cmake"
  cp -r /usr/include/gtest "$DEPS/include/" || return 1
  [[ -d /usr/include/gmock ]] && cp -r /usr/include/gmock "$DEPS/include/"
  cp -r /usr/include/stb "$DEPS/include/" || return 1
  cp /usr/$multi/libgtest.a /usr/$multi/libgtest_main.a "$DEPS/$multi/" || return 1
  cp /usr/$multi/libgmock*.a "$DEPS/$multi/" 2>/dev/null
  cp -r /usr/$multi/cmake/GTest "$DEPS/$multi/cmake/" || return 1
  du -sh "$DEPS"
  echo "carry it: run(..., carry=[\"$DEPS\"])"
}

# ---- build ----------------------------------------------------------------------------------------------------
binaries_present() {
  [[ -x $BUILD/tests/test_cuda && -x $BUILD/bench/bench_cuda_ops && -x $BUILD/bench/bench_train_step &&
    -x $BUILD/bench/bench_attention_cuda && -x $BUILD/glance ]]
}

do_build() {
  local log=$OUT/build.log
  if binaries_present && [[ -z "${GPU_SESSION_REBUILD:-}" ]]; then
    say "binaries present in $BUILD (built from $(cat "$BUILD/.glance-commit" 2>/dev/null || echo '?')); not rebuilding"
    return 0
  fi
  local arch
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  [[ $arch =~ ^[0-9]+$ ]] || arch=90
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  local prefix=()
  [[ -d $DEPS ]] && prefix=(-DCMAKE_PREFIX_PATH="$here/$DEPS")
  # Release, CUDA on, machine code for this GPU only (sm_$arch), no examples; native CPU tuning stays on (the
  # host code runs on this machine's CPU).
  run_step configure 120 "$log" cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGLANCE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGLANCE_BUILD_EXAMPLES=OFF "${prefix[@]}" || return 1
  run_step build 540 "$log" cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}" || return 1
  commit >"$BUILD/.glance-commit"
  say "built sm_$arch in $BUILD"
}

# ---- test ----------------------------------------------------------------------------------------------------
stage_test() {
  local log=$OUT/test_cuda.log
  run_step test_cuda 300 "$log" "$BUILD/tests/test_cuda" --gtest_output="xml:$OUT/test_cuda.xml"
  local rc=$?
  grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$log" | head -n 40 >&2
  local cs
  if cs=$(sanitizer); then
    # The caching allocator rounds blocks up (512 B / 2 MiB) and reuses them, so memcheck sees an overrun only
    # past the rounded block; the kernels' own bounds are what it checks here.
    run_step memcheck 420 "$OUT/memcheck.log" "$cs" --tool memcheck --leak-check no --error-exitcode 3 \
      "$BUILD/tests/test_cuda" --gtest_filter="$SANITIZER_FILTER"
    local mrc=$?
    tail -n 5 "$OUT/memcheck.log" >&2
    say "memcheck exit $mrc (filter $SANITIZER_FILTER)"
  else
    say "compute-sanitizer not found"
    echo "compute-sanitizer not found" >"$OUT/memcheck.log"
  fi
  return $rc
}

# ---- bench: primitives and the training step --------------------------------------------------------------
last_json() { grep -E '^\{' "$1" | tail -n 1; }

stage_bench() {
  local log=$OUT/bench.log ops=$OUT/cuda_ops.jsonl train=$OUT/train_step.jsonl
  : >"$ops"
  : >"$train"
  local tmp
  tmp=$(mktemp -d)
  # 1. memory-bound ops, GEMM vs cuBLAS, fused vs unfused (stdout: JSON; stderr: progress, to the log)
  run_step bench_cuda_ops 240 "$log" bash -c "'$BUILD/bench/bench_cuda_ops' --reps 20 > '$ops'"
  # 2. the RLT training step, small model: glance (kernel fused unless named) and PyTorch eager, same shapes.
  #    Each run's last stdout line is its JSON. (ViT-B: the stage bench-base.)
  local G=$BUILD/bench/bench_train_step S="--steps 30 --warmup 5"
  local k
  glance_train() {  # name, args...
    local name=$1
    shift
    run_step "glance $name" 90 "$log" bash -c "'$G' --device cuda $S $* > '$tmp/g.out'" && last_json "$tmp/g.out" >>"$train"
  }
  torch_train() {
    local name=$1
    shift
    run_step "torch $name" 120 "$log" bash -c "$PY bench/train_step_torch.py --device cuda $S $* > '$tmp/t.out'" &&
      last_json "$tmp/t.out" >>"$train"
  }
  glance_train "small dense fused" --attention-kernel fused
  torch_train "small dense all" --attention all
  glance_train "small rlt fused" --attention-kernel fused --policy rlt
  glance_train "small dense-synthetic fused" --attention-kernel fused --policy dense --data synthetic
  k=$(grep '"case": *"rlt_rlt_d192' "$train" | tail -n 1 | $PY -c 'import json,sys; print(",".join(map(str, json.loads(sys.stdin.read())["counts"])))' 2>/dev/null)
  if [[ -n $k ]]; then torch_train "small rlt (padded) all" --attention all --counts "$k"; fi
  glance_train "small dense reference" --attention-kernel reference
  glance_train "small dense fused tf32" --attention-kernel fused --tf32
  glance_train "small dense fused_bf16 (mixed precision: bf16 attention core)" --attention-kernel fused_bf16
  torch_train "small dense sdpa_bf16 (the same mixed precision)" --attention sdpa_bf16
  torch_train "small dense sdpa tf32" --attention sdpa --tf32
  rm -rf "$tmp"
}

# ---- bench-base: the training step at ViT-B's size --------------------------------------------------------
stage_bench_base() {
  local log=$OUT/bench_base.log train=$OUT/train_step_base.jsonl
  : >"$train"
  local tmp
  tmp=$(mktemp -d)
  local G=$BUILD/bench/bench_train_step S="--steps 20 --warmup 3"
  local k
  glance_train() {
    local name=$1
    shift
    run_step "glance $name" 120 "$log" bash -c "'$G' --device cuda $S $* > '$tmp/g.out'" && last_json "$tmp/g.out" >>"$train"
  }
  torch_train() {
    local name=$1
    shift
    run_step "torch $name" 150 "$log" bash -c "$PY bench/train_step_torch.py --device cuda $S $* > '$tmp/t.out'" &&
      last_json "$tmp/t.out" >>"$train"
  }
  glance_train "base dense fused" --attention-kernel fused --preset base
  torch_train "base dense sdpa+explicit" --attention all --preset base
  glance_train "base rlt fused" --attention-kernel fused --preset base --policy rlt
  k=$(grep '"case": *"rlt_rlt_d768' "$train" | tail -n 1 | $PY -c 'import json,sys; print(",".join(map(str, json.loads(sys.stdin.read())["counts"])))' 2>/dev/null)
  if [[ -n $k ]]; then torch_train "base rlt (padded) all" --attention all --preset base --counts "$k"; fi
  glance_train "base dense-synthetic fused" --attention-kernel fused --preset base --policy dense --data synthetic
  rm -rf "$tmp"
}

# ---- attention: the fused kernels vs PyTorch SDPA ---------------------------------------------------------
stage_attention() {
  local log=$OUT/attention.log g=$OUT/attention_glance.jsonl t=$OUT/attention_torch.jsonl
  : >"$g"
  : >"$t"
  run_step bench_attention_cuda 240 "$log" bash -c "'$BUILD/bench/bench_attention_cuda' --reps 20 > '$g'"
  run_step attention_torch 300 "$log" bash -c "$PY bench/attention_torch.py --reps 20 --from-glance '$g' > '$t'"
}

# ---- demo: the README's main job, on the GPU ----------------------------------------------------------------
stage_demo() {
  local log=$OUT/demo_cuda.log
  run_step "glance demo --device cuda" 540 "$log" "$BUILD/glance" demo --device cuda --no-progress --out "$OUT/demo-runs"
  local rc=$?
  last_json "$log" >"$OUT/demo_cuda.json"
  (cd "$OUT" && tar czf demo-metrics.tar.gz demo-runs && rm -rf demo-runs) 2>/dev/null
  cat "$OUT/demo_cuda.json" >&2
  return $rc
}

summarize() {  # stage name
  $PY scripts/gpu_summary.py --env "$OUT/env.txt" "$OUT" >"$OUT/summary-$1.md" || say "gpu_summary.py failed"
  cat "$OUT/summary-$1.md"
}

# At most 8 files come back from $OUT: more are packed into one archive (the summaries stay beside it).
pack_out() {
  local n
  n=$(find "$OUT" -maxdepth 1 -type f | wc -l)
  if ((n > 8)); then
    (cd "$OUT" && files=$(find . -maxdepth 1 -type f ! -name 'summary-*.md' ! -name '*.tar.gz' | sort) &&
      tar czf "gpu-session-$1.tar.gz" $files && rm -f $files)
    say "packed $n files into $OUT/gpu-session-$1.tar.gz"
  fi
}

stage=${1:-}
case "$stage" in
  deps) stage_deps ;;
  build)
    write_env
    do_build
    rc=$?
    tail -n 3 "$OUT/build.log" >&2
    exit $rc
    ;;
  test)
    write_env
    do_build || exit 1
    stage_test
    rc=$?
    pack_out test
    exit $rc
    ;;
  bench)
    write_env
    do_build || exit 1
    stage_bench
    summarize bench
    pack_out bench
    ;;
  bench-base)
    write_env
    do_build || exit 1
    stage_bench_base
    summarize bench-base
    pack_out bench-base
    ;;
  attention)
    write_env
    do_build || exit 1
    stage_attention
    summarize attention
    pack_out attention
    ;;
  demo)
    write_env
    do_build || exit 1
    stage_demo
    rc=$?
    pack_out demo
    exit $rc
    ;;
  all)
    BUDGET=${GPU_SESSION_BUDGET_S:-3600}
    write_env
    do_build || exit 1
    stage_test
    stage_bench
    stage_bench_base
    stage_attention
    stage_demo
    summarize all
    pack_out all
    ;;
  summary)
    shift
    $PY "$here/scripts/gpu_summary.py" "$@"
    ;;
  *)
    sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
