#!/usr/bin/env bash
# The one script a GPU session runs: the CUDA tests, compute-sanitizer, every GPU benchmark and the main job on
# the GPU, writing logs, JSON lines and a summary under ${OUT:-out}/. Made for the device tool of this workplace
# (/work/.library/device/README.md), which now lends 15 minutes of device time per task, machine start
# included: so the binaries are built HERE, on the machine without a GPU, and carried; the GPU runs only what
# needs the GPU, in two calls of about five minutes each, the most important checks first.
#
#   HERE (no GPU; about 4 minutes from scratch on 2 cores, costs no device time):
#     scripts/gpu_session.sh prebuild    GoogleTest + stb into build-gpu-deps/ (for a rebuild there, if needed),
#                                        and test_cuda, the GPU benchmarks and glance built for sm_90 (H100/H200)
#                                        with portable host code, packed into build-gpu-prebuilt/ (~5 MB, xz)
#                                        with a manifest
#   ON THE GPU, two calls back to back (the machine stays warm 30 s after a call):
#     scripts/gpu_session.sh first       env; test_cuda (all); glance demo --device cuda; bench_cuda_ops; the RLT
#                                        training step, glance vs PyTorch (dense, RLT)        (at most 330 s)
#     scripts/gpu_session.sh second      attention kernels vs PyTorch SDPA (bf16, then fp32; N <= 8192);
#                                        compute-sanitizer memcheck on a subset; the training step's other
#                                        variants (reference kernel, TF32, mixed precision); fp16 attention;
#                                        ViT-B's step if time is left                          (at most 270 s)
#   One part alone (a rerun after a fix): build, test, memcheck, bench, attention, demo, bench-base
#   Anywhere: scripts/gpu_session.sh summary DIR...     the markdown tables of the files found in DIRs
#             scripts/gpu_session.sh source-hash        the hash of the sources (manifest.txt's "source hash")
#
# Device-tool calls (timeout_s leaves a margin over the stage's budget; each stage ends inside its budget):
#   run(command="bash scripts/gpu_session.sh first",  carry=["build-gpu-prebuilt","build-gpu-deps"], timeout_s=360)
#   run(command="bash scripts/gpu_session.sh second", carry=["build-gpu-prebuilt","build-gpu-deps"], timeout_s=300)
# Start (1-2 min) + 330 s + 270 s + transfers leaves about 2 minutes of the 15 in hand; then give_back.
#
# The binaries: a stage uses build-gpu-prebuilt/ when its manifest's source hash equals the hash of the source
# files here (the same code), the GPU is sm_90, and the programs load (cudart and cuBLAS 13 found). Otherwise
# first and second stop at once (a build would eat their budget): prebuild again, or run the `build` stage
# (build-gpu/, 16 cores), which a warm machine keeps for the next call. The one-part stages build when needed.
# env.txt says which binaries ran, and from which commit. A stage exits 1 when a step failed or was skipped.
#
# Environment: OUT (default out/), GLANCE_COMMIT (the commit to record where the copy has no .git),
# GPU_SESSION_BUDGET_S (seconds a stage may take; first 330, second 270, one part 540: a step that would not fit
# is skipped and says so), GPU_SESSION_REBUILD=1 (build on the GPU machine even when usable binaries exist),
# GPU_SESSION_ALLOW_BUILD=1 (first and second may build when no usable binaries exist),
# SANITIZER_FILTER (gtest filter for compute-sanitizer), BUILD_DIR (default build-gpu), GPU_SESSION_PREBUILT
# (default build-gpu-prebuilt), GPU_SESSION_RUN_DIR (default build-gpu-run: the binaries unpacked), PYTHON
# (default python3: the one with PyTorch there).
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
PREBUILT=${GPU_SESSION_PREBUILT:-build-gpu-prebuilt}
RUN=${GPU_SESSION_RUN_DIR:-build-gpu-run}  # where the GPU machine unpacks the prebuilt binaries
DEPS=build-gpu-deps
START=$(date +%s)
# The programs' paths inside a build folder (the prebuilt archive keeps the same layout); their CMake targets are
# their file names.
BINARIES=(tests/test_cuda bench/bench_cuda_ops bench/bench_train_step bench/bench_attention_cuda glance)
TARGETS=("${BINARIES[@]##*/}")
SANITIZER_FILTER=${SANITIZER_FILTER:-'CudaFused.*:CudaRows.*:CudaReduce.LargeReductionsTakeTheSlicedPath:CudaIndexing.*:CudaAutograd.*:CudaMatmul.BroadcastBatchAndVectors:FusedAttentionCuda.ForwardFp32EdgeLengths:FusedAttentionCuda.VarlenPackEqualsEachClipAlone:FusedAttentionCuda.BackwardFp32MatchesTiledCpuGradients:FusedAttentionKernel.*'}
PY=${PYTHON:-python3}
# PyTorch runs with the environment it came with, even after LD_LIBRARY_PATH is extended for glance's programs
# (prebuilt_usable): the toolkit's copies of the CUDA libraries must not replace its own.
PY_ENV=(env "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")
[[ -z ${LD_LIBRARY_PATH+set} ]] && PY_ENV=(env -u LD_LIBRARY_PATH)
PY="${PY_ENV[*]} $PY"
STAGE_RC=0  # 1 once a step fails or is skipped: the stage's exit status
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
    STAGE_RC=1
    return 124
  fi
  say "$name (limit ${t}s)"
  echo "==== $name: $* (limit ${t}s)" >>"$log"
  local t0
  t0=$(date +%s)
  timeout --kill-after=10 "$t" "$@" >>"$log" 2>&1
  local rc=$?
  echo "==== $name: exit $rc after $(($(date +%s) - t0)) s" >>"$log"
  if ((rc == 124 || rc == 137)); then say "$name: TIMED OUT after ${t}s"; elif ((rc != 0)); then say "$name: exit $rc"; fi
  ((rc == 0)) || STAGE_RC=1
  return $rc
}

commit() {
  if [[ -n "${GLANCE_COMMIT:-}" ]]; then echo "$GLANCE_COMMIT"; return; fi
  git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown
}

commit_described() {  # the commit, and whether the tree has uncommitted changes
  echo "$(commit)$(git -C "$here" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
}

# A hash of every file the binaries are built from, computed the same way here and on the GPU machine (which
# may receive the tree without .git): equal hashes mean the prebuilt binaries are this code.
source_hash() {
  find CMakeLists.txt tensor autograd nn rlt cuda bench tests -type f \
    \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name CMakeLists.txt \) -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# This run's sources (prebuild hashes them again after its build, to catch edits made meanwhile).
SOURCE_HASH=$(source_hash)

gpu_arch() {  # "90" for an H100/H200, empty without nvidia-smi
  nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .'
}

sanitizer() {
  command -v compute-sanitizer 2>/dev/null && return 0
  local c
  for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [[ -x $c ]] && echo "$c" && return 0
  done
  return 1
}

# The machine, read only: nvidia-smi queries, compiler and library versions, this commit.
write_env() {
  local f=$OUT/env.txt
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(commit_described)"
    echo "source hash: $SOURCE_HASH"
    echo "host: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
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

# ---- HERE: the binaries and the dependencies the GPU machine lacks ------------------------------------------
# GoogleTest (static libraries, headers, CMake package) and the stb headers from this machine's Debian packages
# (libgtest-dev, libstb-dev), laid out as an install prefix that CMAKE_PREFIX_PATH can point at: only a build
# on the GPU machine needs them (it has neither and cannot download).
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
}

# The binaries for the GPU, built here: sm_90 machine code + PTX (the H100 and H200 are both compute capability
# 9.0), host code without -march=native (the GPU machine's CPU is another), Release. Same nvcc (13.0) as there.
# Stripped of host symbols (device line info stays: compute-sanitizer names source lines) and packed with xz:
# each program holds the same ~23 MB of kernels, 108 MB in all, which xz's 64 MiB window stores once (about
# 5 MB), well inside the 64 MiB a call may carry.
stage_prebuild() {
  local dir=${PREBUILD_DIR:-build-gpu-here}
  stage_deps || return 1
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGLANCE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGLANCE_NATIVE=OFF -DGLANCE_BUILD_EXAMPLES=OFF || return 1
  cmake --build "$dir" -j "$(nproc)" --target "${TARGETS[@]}" || return 1
  if [[ $(source_hash) != "$SOURCE_HASH" ]]; then  # sources edited during the build must not be credited to it
    echo "prebuild: the sources changed during the build; run it again" >&2
    return 1
  fi
  local stage b
  stage=$(mktemp -d)
  for b in "${BINARIES[@]}"; do
    mkdir -p "$stage/$(dirname "$b")"
    cp "$dir/$b" "$stage/$b" && strip --strip-unneeded "$stage/$b" || { rm -rf "$stage"; return 1; }
  done
  rm -rf "$PREBUILT"
  mkdir -p "$PREBUILT"
  tar -C "$stage" -cf - "${BINARIES[@]}" | xz -9 -T1 >"$PREBUILT/binaries.tar.xz" || { rm -rf "$stage"; return 1; }
  {
    echo "commit: $(commit_described)"
    echo "source hash: $SOURCE_HASH"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), $(g++ --version | head -n 1)"
    echo "nvcc: $(nvcc --version | grep -o 'release [0-9.]*')"
    echo "cuda architectures: 90 (sm_90 machine code + compute_90 PTX); host code portable x86-64 (GLANCE_NATIVE=OFF)"
    echo "needs: $(ldd "$stage/tests/test_cuda" | awk '{print $1}' | grep -E 'cublas|cudart|gomp|stdc' | tr '\n' ' ')"
    echo "binaries: ${BINARIES[*]} ($(du -sh "$stage" | cut -f1) unpacked)"
  } >"$PREBUILT/manifest.txt"
  rm -rf "$stage"
  cat "$PREBUILT/manifest.txt"
  du -sh "$PREBUILT" "$DEPS"
  echo "carry both: run(..., carry=[\"$PREBUILT\",\"$DEPS\"])"
}

# ---- ON THE GPU: which binaries --------------------------------------------------------------------------------
# The folders holding the CUDA libraries the programs link (cudart, cuBLAS, cuBLASLt 13), for LD_LIBRARY_PATH
# where the loader does not find them by itself: the toolkit's, then PyTorch's pip packages (nvidia/*/lib),
# then anywhere on the disk. Prints them joined by ':' (nothing when none is found).
cuda_lib_path() {
  local lib d found dirs=() pip_dirs
  pip_dirs=$($PY -c 'import nvidia, os; p = list(nvidia.__path__)[0]; print(" ".join(os.path.join(p, x, "lib") for x in sorted(os.listdir(p))))' 2>/dev/null)
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    found=
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 $pip_dirs; do
      [[ -e $d/$lib ]] && { found=$d; break; }
    done
    [[ -z $found ]] && found=$(find / -xdev -name "$lib" -print -quit 2>/dev/null | xargs -r dirname)
    [[ -n $found ]] && dirs+=("$found")
  done
  printf '%s\n' "${dirs[@]}" | awk 'NF && !seen[$0]++' | paste -sd:
}

binaries_in() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x $1/$b ]] || return 1; done
}

prebuilt_starts() {  # the unpacked test_cuda lists its tests (so the loader found every library it links)
  timeout 30 "$RUN/tests/test_cuda" --gtest_list_tests >/dev/null 2>"$OUT/prebuilt-load.log"
}

unxz_to_stdout() {  # xz where it is installed, else Python's lzma module
  if command -v xz >/dev/null; then xz -dc "$1"; else
    $PY -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# Uses build-gpu-prebuilt/ when it is this code, for this GPU, and loads: unpacks it into $RUN (build-gpu-run/)
# and says why not otherwise.
prebuilt_usable() {
  [[ -n "${GPU_SESSION_REBUILD:-}" ]] && { say "GPU_SESSION_REBUILD set: not using $PREBUILT"; return 1; }
  [[ -f $PREBUILT/binaries.tar.xz ]] || { say "no $PREBUILT/ (run 'scripts/gpu_session.sh prebuild' here and carry it)"; return 1; }
  local want arch
  want=$(sed -n 's/^source hash: //p' "$PREBUILT/manifest.txt" 2>/dev/null)
  [[ $want == "$SOURCE_HASH" ]] || { say "$PREBUILT/ was built from other sources (hash $want, here $SOURCE_HASH)"; return 1; }
  arch=$(gpu_arch)
  [[ $arch == 90 ]] || { say "$PREBUILT/ is for sm_90, this GPU is sm_${arch:-?}"; return 1; }
  rm -rf "$RUN"
  mkdir -p "$RUN"
  unxz_to_stdout "$PREBUILT/binaries.tar.xz" | tar -C "$RUN" -xf - && binaries_in "$RUN" ||
    { say "$PREBUILT/binaries.tar.xz does not unpack"; return 1; }
  # Where the loader does not find the CUDA libraries by itself: the toolkit's or PyTorch's copies (cuda_lib_path).
  if ! prebuilt_starts; then
    local dirs
    dirs=$(cuda_lib_path)
    if [[ -n $dirs ]]; then
      export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "test_cuda did not start ($(head -c 200 "$OUT/prebuilt-load.log")); trying LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    fi
    if ! prebuilt_starts; then
      say "the prebuilt test_cuda does not start here: $(head -c 300 "$OUT/prebuilt-load.log")"
      ldd "$RUN/tests/test_cuda" >>"$OUT/prebuilt-load.log" 2>&1
      return 1
    fi
  fi
  rm -f "$OUT/prebuilt-load.log"
  return 0
}

# Sets BIN to the folder whose binaries this stage runs: the prebuilt ones, an earlier build on this (warm)
# machine, or a build now. Records the choice in env.txt.
choose_binaries() {
  if prebuilt_usable; then
    BIN=$RUN
    echo "binaries: prebuilt ($(sed -n 's/^commit: //p' "$PREBUILT/manifest.txt"); $(sed -n 's/^built: //p' "$PREBUILT/manifest.txt"))" >>"$OUT/env.txt"
    say "using the prebuilt binaries (unpacked in $RUN)"
    return 0
  fi
  if [[ -n ${NO_BUILD:-} && -z ${GPU_SESSION_ALLOW_BUILD:-} ]] && ! binaries_of_this_code_in "$BUILD"; then
    # first and second: a build would take the stage's whole budget and leave no results. Say so at once.
    say "STOP: no usable binaries. Here: 'scripts/gpu_session.sh prebuild' again and carry build-gpu-prebuilt;" \
      "or on the GPU: the 'build' stage (540 s), then this stage (GPU_SESSION_ALLOW_BUILD=1 builds within it)"
    echo "binaries: none usable (prebuilt refused; no build in this stage)" >>"$OUT/env.txt"
    return 1
  fi
  do_build || return 1
  BIN=$BUILD
  echo "binaries: built on this machine in $BUILD ($(cat "$BUILD/.glance-commit" 2>/dev/null || commit))" >>"$OUT/env.txt"
}

binaries_of_this_code_in() {  # a build folder on this machine holds the programs, built from these sources
  binaries_in "$1" && [[ $(cat "$1/.glance-source-hash" 2>/dev/null) == "$SOURCE_HASH" ]]
}

do_build() {
  local log=$OUT/build.log
  if binaries_of_this_code_in "$BUILD" && [[ -z "${GPU_SESSION_REBUILD:-}" ]]; then
    say "binaries of this code present in $BUILD; not rebuilding"
    return 0
  fi
  local arch
  arch=$(gpu_arch)
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
  echo "$SOURCE_HASH" >"$BUILD/.glance-source-hash"
  say "built sm_$arch in $BUILD"
}

# ---- steps -------------------------------------------------------------------------------------------------
step_test() {
  local log=$OUT/test_cuda.log
  run_step test_cuda "${1:-240}" "$log" "$BIN/tests/test_cuda" --gtest_output="xml:$OUT/test_cuda.xml"
  local rc=$?
  grep -E '^\[  (PASSED|FAILED) |^\[  FAILED  \]|tests? (ran|skipped)' "$log" | head -n 30 >&2
  return $rc
}

# The caching allocator rounds blocks up (512 B / 2 MiB) and reuses them, so memcheck sees an overrun only past
# the rounded block; the kernels' own bounds are what it checks here.
step_memcheck() {
  local cs
  if ! cs=$(sanitizer); then
    say "compute-sanitizer not found"
    echo "compute-sanitizer not found" >"$OUT/memcheck.log"
    return 1
  fi
  run_step memcheck "${1:-240}" "$OUT/memcheck.log" "$cs" --tool memcheck --leak-check no --error-exitcode 3 \
    "$BIN/tests/test_cuda" --gtest_filter="$SANITIZER_FILTER"
  local rc=$?
  grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$OUT/memcheck.log" | tail -n 4 >&2
  return $rc
}

step_cuda_ops() {
  run_step bench_cuda_ops "${1:-120}" "$OUT/bench.log" bash -c "'$BIN/bench/bench_cuda_ops' --reps ${2:-20} > '$OUT/cuda_ops.jsonl'"
}

last_json() { grep -E '^\{' "$1" | tail -n 1; }

# train_line LABEL CAP FILE PROGRAM ARGS...: one training-step benchmark (PROGRAM, a command line, is given
# --device cuda and ARGS), its last JSON line appended to FILE.
train_line() {
  local label=$1 cap=$2 file=$3 program=$4 tmp
  shift 4
  tmp=$(mktemp)
  run_step "$label" "$cap" "$OUT/bench.log" bash -c "$program --device cuda $* > '$tmp'" && last_json "$tmp" >>"$file"
  rm -f "$tmp"
}
train_glance() { train_line "glance $1" "$2" "$3" "'$BIN/bench/bench_train_step'" "${@:4}"; }
train_torch() { train_line "torch $1" "$2" "$3" "$PY bench/train_step_torch.py" "${@:4}"; }

counts_of() {  # the per-clip token counts of the RLT line for model width $2 in file $1, comma-separated
  grep "\"case\": *\"rlt_rlt_d$2" "$1" | tail -n 1 |
    $PY -c 'import json,sys; print(",".join(map(str, json.loads(sys.stdin.read())["counts"])))' 2>/dev/null
}

# The small model's step (dim 192, depth 4, 8 clips x 392 tokens), glance and PyTorch eager: dense, then RLT
# and dense on the same synthetic clips (PyTorch pads RLT's clips to the longest).
step_train_main() {
  local f=$OUT/train_step.jsonl S="--steps 30 --warmup 5" k
  train_glance "small dense fused" 30 "$f" $S --attention-kernel fused
  train_torch "small dense all" 60 "$f" $S --attention all
  train_glance "small rlt fused" 30 "$f" $S --attention-kernel fused --policy rlt
  k=$(counts_of "$f" 192)
  if [[ -n $k ]]; then train_torch "small rlt (padded) all" 45 "$f" $S --attention all --counts "$k"; fi
  train_glance "small dense-synthetic fused" 30 "$f" $S --attention-kernel fused --policy dense --data synthetic
}

# The other variants of the small step: the reference attention kernel, TF32, mixed precision (bf16 attention
# core, both sides).
step_train_variants() {
  local f=$OUT/train_step_variants.jsonl S="--steps 30 --warmup 5"
  train_glance "small dense fused_bf16 (mixed precision: bf16 attention core)" 30 "$f" $S --attention-kernel fused_bf16
  train_torch "small dense sdpa_bf16 (the same mixed precision)" 45 "$f" $S --attention sdpa_bf16
  train_glance "small dense reference" 30 "$f" $S --attention-kernel reference
  train_glance "small dense fused tf32" 30 "$f" $S --attention-kernel fused --tf32
  train_torch "small dense sdpa tf32" 45 "$f" $S --attention sdpa --tf32
}

# ViT-B's step (dim 768, depth 12, 8 clips x 1568 tokens).
step_train_base() {
  local f=$OUT/train_step_base.jsonl S="--steps 20 --warmup 3" k
  train_glance "base dense fused" 90 "$f" $S --attention-kernel fused --preset base
  train_torch "base dense all" 150 "$f" $S --attention all --preset base
  train_glance "base rlt fused" 90 "$f" $S --attention-kernel fused --preset base --policy rlt
  k=$(counts_of "$f" 768)
  if [[ -n $k ]]; then train_torch "base rlt (padded) all" 150 "$f" $S --attention all --preset base --counts "$k"; fi
  train_glance "base dense-synthetic fused" 90 "$f" $S --attention-kernel fused --preset base --policy dense --data synthetic
}

# The fused attention kernels against PyTorch SDPA for one precision (fp32, bf16; fp16 has no PyTorch side here),
# each side under its own limit so that one slow precision cannot starve the next.
# step_attention DTYPE MAX_N REPS CAP_GLANCE CAP_TORCH
step_attention() {
  local dt=$1 max_n=$2 reps=$3 g=$OUT/attention_glance.jsonl t=$OUT/attention_torch.jsonl
  run_step "bench_attention_cuda $dt" "$4" "$OUT/attention.log" \
    bash -c "'$BIN/bench/bench_attention_cuda' --dtypes $dt --reps $reps --max-n $max_n >> '$g'"
  [[ $dt == fp16 ]] && return
  run_step "attention_torch $dt" "$5" "$OUT/attention.log" \
    bash -c "$PY bench/attention_torch.py --dtypes $dt --reps $reps --max-n $max_n ${ATTENTION_TORCH_ARGS:-} --from-glance '$g' >> '$t'"
}

# The README's main job (RLT vs dense on the built-in dataset) on the GPU.
step_demo() {
  local log=$OUT/demo_cuda.log
  run_step "glance demo --device cuda" "${1:-540}" "$log" "$BIN/glance" demo --device cuda --no-progress --out "$OUT/demo-runs"
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

# At most 8 files come back from $OUT: more are packed into one archive (env.txt and the summary stay beside it).
pack_out() {
  local n
  n=$(find "$OUT" -maxdepth 1 -type f | wc -l)
  if ((n > 8)); then
    (cd "$OUT" && files=$(find . -maxdepth 1 -type f ! -name 'summary-*.md' ! -name env.txt ! -name 'gpu-session-*' | sort) &&
      tar czf "gpu-session-$1.tar.gz" $files && rm -f $files)
    say "packed $n files into $OUT/gpu-session-$1.tar.gz"
  fi
}

gpu_stage() {  # name default-budget: env + binaries; the caller runs the steps, then finish
  BUDGET=${GPU_SESSION_BUDGET_S:-$2}
  write_env
  say "stage $1, budget ${BUDGET}s"
  choose_binaries
}

finish() {  # stage name
  say "stage $1 done in $(($(date +%s) - START)) s"
  summarize "$1"
  pack_out "$1"
}

stage=${1:-}
case "$stage" in
  prebuild) stage_prebuild ;;
  deps) stage_deps ;;
  first)
    NO_BUILD=1 gpu_stage first 330 || { finish first; exit 1; }
    step_test 150
    step_demo 90
    step_cuda_ops 60 10
    step_train_main
    finish first
    exit $STAGE_RC
    ;;
  second)
    NO_BUILD=1 gpu_stage second 270 || { finish second; exit 1; }
    ATTENTION_TORCH_ARGS="--skip-math-above 2048"  # the math backend materialises L x L scores: slow, not a target
    step_attention bf16 8192 10 40 60
    step_attention fp32 8192 10 50 60
    step_memcheck 75
    step_train_variants
    step_attention fp16 8192 10 30
    step_train_base
    finish second
    exit $STAGE_RC
    ;;
  build)
    BUDGET=${GPU_SESSION_BUDGET_S:-570}
    write_env
    do_build
    rc=$?
    tail -n 3 "$OUT/build.log" >&2
    exit $rc
    ;;
  test | memcheck | bench | attention | demo | bench-base)
    gpu_stage "$stage" 540 || { finish "$stage"; exit 1; }
    case "$stage" in
      test) step_test 300; step_memcheck 220 ;;
      memcheck) step_memcheck 520 ;;
      bench) step_cuda_ops 150 20; step_train_main; step_train_variants ;;
      attention) for dt in bf16 fp32; do step_attention $dt 32768 20 120 140; done; step_attention fp16 32768 20 80 ;;
      demo) step_demo 520 ;;
      bench-base) step_train_base ;;
    esac
    finish "$stage"
    exit $STAGE_RC
    ;;
  source-hash) echo "$SOURCE_HASH" ;;
  summary)
    shift
    $PY "$here/scripts/gpu_summary.py" "$@"
    ;;
  *)
    sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
