#!/usr/bin/env bash
# glance on a CUDA machine: the CUDA tests, compute-sanitizer's memcheck on a subset, the GPU benchmarks against
# cuBLAS and PyTorch, and `glance demo --device cuda`, each step under a time cap, with logs, JSON lines and one
# markdown summary written under the output folder.
#
# The programs can be built on the GPU machine itself, or on another machine (a login node, a workstation
# without a GPU) and copied over: `prebuild` packs them with a manifest holding a hash of every source file they
# were built from, and `run` uses them only where the sources beside the script hash the same (the same code:
# no figure can come from other sources) and the GPU's compute capability is one they were built for.
#
#   scripts/gpu_run.sh prebuild [--arch 90] [--prebuilt DIR]
#       On any machine with nvcc (no GPU needed): builds test_cuda, the GPU benchmarks and glance for the given
#       compute capabilities (a ';'-separated list; default 90: H100, H200) with portable host code, packs them
#       into DIR (default build-gpu-prebuilt/, about 5 MB), and GoogleTest + stb into build-gpu-deps/ (only a
#       rebuild on a GPU machine without them needs those). Copy both folders beside the sources there.
#   scripts/gpu_run.sh run [options]
#       On the GPU machine: the parts asked for, in the order given, then the summary.
#   scripts/gpu_run.sh build [--build-dir DIR]
#       On the GPU machine: builds the programs there (Ninja when present, every core, the GPU's own sm).
#   scripts/gpu_run.sh summary DIR...      the markdown summary of the files found in DIRs (scripts/gpu_summary.py)
#   scripts/gpu_run.sh source-hash         the hash of the sources, as the manifest records it
#
# Parts of `run` (default: all, in this order):
#   test            test_cuda, every test                                               (cap 300 s)
#   demo            glance demo --device cuda, the main job                              (cap 540 s)
#   ops             bench_cuda_ops: memory-bound ops vs the d2d copy, GEMM vs cuBLAS, fused kernels (cap 150 s)
#   train           the small model's training step, glance and PyTorch eager: dense, RLT, the same clips dense,
#                   and PyTorch on RLT's clips padded to the longest              (cap 60 s each of 5 steps)
#   attention       fused attention vs PyTorch SDPA, bf16 then fp32, forward and forward+backward, dense and
#                   variable-length packs, N 512 .. --attention-max-n                   (cap 140 s each side)
#   memcheck        compute-sanitizer --tool memcheck on a subset of test_cuda (--sanitizer-filter)   (cap 300 s)
#   train-variants  the small step with the reference kernel, TF32, and bf16 mixed precision on both sides
#                                                                                         (cap 60 s each)
#   attention-fp16  fused attention in fp16 (glance only)                                 (cap 120 s)
#   train-base      ViT-B's training step (dim 768, depth 12, 8 clips x 1568 tokens), dense and RLT
#                                                                                       (cap 150 s each)
#
# Options of `run`:
#   --parts LIST           comma-separated parts (default: all of the above)
#   --budget S             seconds the whole run may take: a step gets the smaller of its cap and what is left,
#                          and a step that would not fit is skipped and named (default: no limit)
#   --cap PART=S[,...]     a part's cap per step, in seconds (e.g. --cap test=150,demo=90)
#   --reps N               timed repetitions of bench_cuda_ops and the attention benchmarks (default 20)
#   --attention-max-n N    the longest sequence of the attention benchmarks (default 32768)
#   --sanitizer-filter F   the gtest filter memcheck runs (default: a subset covering every kernel family)
#   --out DIR              where the results go (default out/, or $OUT)
#   --label NAME           the summary's name: DIR/summary-NAME.md (default run)
#   --pack                 pack the logs and JSON lines into DIR/gpu-run-NAME.tar.gz (env.txt and the summary
#                          stay beside it), for copying back one file
#   --prebuilt DIR         prebuilt programs to use when they match (default build-gpu-prebuilt/)
#   --unpack-dir DIR       where they are unpacked (default build-gpu-run/)
#   --build-dir DIR        the build on this machine (default build-gpu/)
#   --no-build             stop at once when no usable programs exist instead of building them (for a run whose
#                          time is too short for a build)
#   --rebuild              build here even when usable programs exist
# Environment: PYTHON (the python3 that has PyTorch; default python3), GLANCE_COMMIT (the commit to record where
# the copy of the sources has no .git).
#
# `run` exits 0 when every step ran and passed, 1 when one failed, timed out or was skipped. It only reads the
# GPU's state (nvidia-smi queries): it never changes clocks, power limits, compute mode, MIG or persistence, and
# never resets the device. docs/performance/README-gpu.md describes each benchmark.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
START=$(date +%s)
# The programs' paths inside a build folder (the prebuilt archive keeps the same layout); their CMake targets are
# their file names.
BINARIES=(tests/test_cuda bench/bench_cuda_ops bench/bench_train_step bench/bench_attention_cuda glance)
TARGETS=("${BINARIES[@]##*/}")
ALL_PARTS=test,demo,ops,train,attention,memcheck,train-variants,attention-fp16,train-base
DEPS=build-gpu-deps

# ---- options ----------------------------------------------------------------------------------------------------
OUT=${OUT:-out}
PARTS=$ALL_PARTS
BUDGET=0  # 0: no limit
REPS=20
ATTENTION_MAX_N=32768
SANITIZER_FILTER='CudaFused.*:CudaRows.*:CudaReduce.LargeReductionsTakeTheSlicedPath:CudaIndexing.*:CudaAutograd.*:CudaMatmul.BroadcastBatchAndVectors:FusedAttentionCuda.ForwardFp32EdgeLengths:FusedAttentionCuda.VarlenPackEqualsEachClipAlone:FusedAttentionCuda.BackwardFp32MatchesTiledCpuGradients:FusedAttentionKernel.*'
LABEL=run
PACK=
PREBUILT=build-gpu-prebuilt
RUN=build-gpu-run
BUILD=build-gpu
NO_BUILD=
REBUILD=
ARCHS=90
declare -A CAP=([test]=300 [demo]=540 [ops]=150 [train]=60 [attention]=140 [memcheck]=300 [train-variants]=60
  [attention-fp16]=120 [train-base]=150)

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}
die() { echo "gpu_run.sh: $*" >&2; exit 2; }
whole_number() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 takes a whole number of seconds or a count, not '$2'"; }

COMMAND=${1:-}
[[ -n $COMMAND ]] || usage
shift
if [[ $COMMAND == summary ]]; then exec "${PYTHON:-python3}" "$here/scripts/gpu_summary.py" "$@"; fi
while (($#)); do
  opt=$1
  [[ $opt == --* ]] || die "unexpected argument '$opt' (see scripts/gpu_run.sh --help)"
  case $opt in
    --pack | --no-build | --rebuild) ;;
    *) (($# >= 2)) || die "$opt needs a value" ;;
  esac
  case $opt in
    --parts)
      PARTS=$2
      for p in ${PARTS//,/ }; do
        [[ ",$ALL_PARTS," == *",$p,"* ]] || die "--parts: unknown part '$p' (the parts: $ALL_PARTS)"
      done ;;
    --budget) whole_number "$opt" "$2"; BUDGET=$2 ;;
    --cap)
      for kv in ${2//,/ }; do
        k=${kv%%=*} v=${kv#*=}
        [[ -n ${CAP[$k]+set} ]] || die "--cap: unknown part '$k' (the parts: $ALL_PARTS)"
        whole_number "--cap $k" "$v"
        CAP[$k]=$v
      done ;;
    --reps) whole_number "$opt" "$2"; REPS=$2 ;;
    --attention-max-n) whole_number "$opt" "$2"; ATTENTION_MAX_N=$2 ;;
    --sanitizer-filter) SANITIZER_FILTER=$2 ;;
    --out) OUT=$2 ;;
    --label) [[ $2 =~ ^[A-Za-z0-9_.-]+$ ]] || die "--label: letters, digits, '.', '_' and '-' only, not '$2'"; LABEL=$2 ;;
    --pack) PACK=1 ;;
    --prebuilt) PREBUILT=$2 ;;
    --unpack-dir) RUN=$2 ;;
    --build-dir) BUILD=$2 ;;
    --no-build) NO_BUILD=1 ;;
    --rebuild) REBUILD=1 ;;
    --arch) [[ $2 =~ ^[0-9]+(\;[0-9]+)*$ ]] || die "--arch: compute capabilities like 90 or '80;90', not '$2'"; ARCHS=$2 ;;
    -h | --help) usage ;;
    *) die "unknown option '$opt' (see scripts/gpu_run.sh --help)" ;;
  esac
  case $opt in --pack | --no-build | --rebuild) shift ;; *) shift 2 ;; esac
done
[[ $COMMAND == -h || $COMMAND == --help ]] && usage
if [[ $COMMAND == run || $COMMAND == build ]]; then
  mkdir -p "$OUT" || die "--out: cannot create '$OUT'"
  OUT=$(cd "$OUT" && pwd)
fi

PY=${PYTHON:-python3}
# PyTorch runs with the environment it came with, even after LD_LIBRARY_PATH is extended for glance's programs
# (prebuilt_usable): the toolkit's copies of the CUDA libraries must not replace its own.
PY_ENV=(env "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")
[[ -z ${LD_LIBRARY_PATH+set} ]] && PY_ENV=(env -u LD_LIBRARY_PATH)
PY="${PY_ENV[*]} $PY"
STATUS=0  # 1 once a step fails or is skipped: the exit status of `run`
export PYTHONUNBUFFERED=1

say() { echo "[gpu_run $(date +%H:%M:%S) +$(($(date +%s) - START))s] $*" >&2; }
left() {  # seconds left of the budget (a day when there is none)
  if ((BUDGET == 0)); then echo 86400; else echo $((BUDGET - ($(date +%s) - START))); fi
}

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
    say "SKIPPED $name: not enough time left in the budget ($(left) s)"
    echo "SKIPPED $name: not enough time left" >>"$log"
    STATUS=1
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
  ((rc == 0)) || STATUS=1
  return $rc
}

commit() {
  if [[ -n "${GLANCE_COMMIT:-}" ]]; then echo "$GLANCE_COMMIT"; return; fi
  git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown
}

commit_described() {  # the commit, and whether the tree has uncommitted changes
  echo "$(commit)$(git -C "$here" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
}

# A hash of every file the programs are built from, computed the same way on every machine (a copy of the
# sources may come without .git): equal hashes mean the prebuilt programs are this code.
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
    echo "parts: ${PARTS//,/ }; budget: $( ((BUDGET)) && echo "$BUDGET s" || echo none)"
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

# ---- prebuild: the programs and the dependencies a GPU machine may lack ----------------------------------------
# GoogleTest (static libraries, headers, CMake package) and the stb headers from this machine's Debian packages
# (libgtest-dev, libstb-dev), laid out as an install prefix that CMAKE_PREFIX_PATH can point at: only a build
# on a GPU machine that has neither needs them.
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

# The programs for the GPU, built here: machine code + PTX for each compute capability in ARCHS, host code
# without -march=native (the GPU machine's CPU may be another), Release. Stripped of host symbols (device line
# info stays: compute-sanitizer names source lines) and packed with xz: each program holds the same ~23 MB of
# kernels, which xz's 64 MiB window stores once (about 5 MB for sm_90 alone).
stage_prebuild() {
  local dir=build-gpu-here
  stage_deps || return 1
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGLANCE_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" \
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
    echo "cuda architectures: $ARCHS"
    echo "host code: portable x86-64 (GLANCE_NATIVE=OFF)"
    echo "needs: $(ldd "$stage/tests/test_cuda" | awk '{print $1}' | grep -E 'cublas|cudart|gomp|stdc' | tr '\n' ' ')"
    echo "binaries: ${BINARIES[*]} ($(du -sh "$stage" | cut -f1) unpacked)"
  } >"$PREBUILT/manifest.txt"
  rm -rf "$stage"
  cat "$PREBUILT/manifest.txt"
  du -sh "$PREBUILT" "$DEPS"
  echo "copy $PREBUILT/ and $DEPS/ beside the same sources on the GPU machine, then: scripts/gpu_run.sh run"
}

# ---- on the GPU: which programs -----------------------------------------------------------------------------------
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

# Uses the prebuilt programs when they are this code, for this GPU, and load: unpacks them into $RUN and says
# why not otherwise.
prebuilt_usable() {
  [[ -n $REBUILD ]] && { say "--rebuild: not using $PREBUILT"; return 1; }
  [[ -f $PREBUILT/binaries.tar.xz ]] || { say "no $PREBUILT/ (run 'scripts/gpu_run.sh prebuild' on the build machine and copy it here)"; return 1; }
  local want arch archs
  want=$(sed -n 's/^source hash: //p' "$PREBUILT/manifest.txt" 2>/dev/null)
  [[ $want == "$SOURCE_HASH" ]] || { say "$PREBUILT/ was built from other sources (hash $want, here $SOURCE_HASH)"; return 1; }
  archs=$(sed -n 's/^cuda architectures: \([0-9;]*\).*/\1/p' "$PREBUILT/manifest.txt" 2>/dev/null)
  arch=$(gpu_arch)
  [[ -n $arch && ";${archs:-90};" == *";$arch;"* ]] || { say "$PREBUILT/ is for sm_${archs:-90}, this GPU is sm_${arch:-?}"; return 1; }
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

# Sets BIN to the folder whose programs this run uses: the prebuilt ones, an earlier build of the same sources
# on this machine, or a build now (unless --no-build). Records the choice in env.txt.
choose_binaries() {
  if prebuilt_usable; then
    BIN=$RUN
    echo "binaries: prebuilt ($(sed -n 's/^commit: //p' "$PREBUILT/manifest.txt"); $(sed -n 's/^built: //p' "$PREBUILT/manifest.txt"))" >>"$OUT/env.txt"
    say "using the prebuilt programs (unpacked in $RUN)"
    return 0
  fi
  if [[ -n $NO_BUILD ]] && ! binaries_of_this_code_in "$BUILD"; then
    say "STOP: no usable programs and --no-build: run 'scripts/gpu_run.sh prebuild' again on the build machine" \
      "and copy $PREBUILT/ here, or 'scripts/gpu_run.sh build' on this machine first"
    echo "binaries: none usable (prebuilt refused; --no-build)" >>"$OUT/env.txt"
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
  if binaries_of_this_code_in "$BUILD" && [[ -z $REBUILD ]]; then
    say "programs of this code present in $BUILD; not rebuilding"
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
  run_step build 1800 "$log" cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}" || return 1
  commit >"$BUILD/.glance-commit"
  echo "$SOURCE_HASH" >"$BUILD/.glance-source-hash"
  say "built sm_$arch in $BUILD"
}

# ---- the parts --------------------------------------------------------------------------------------------------
part_test() {
  local log=$OUT/test_cuda.log
  run_step test_cuda "${CAP[test]}" "$log" "$BIN/tests/test_cuda" --gtest_output="xml:$OUT/test_cuda.xml"
  grep -E '^\[  (PASSED|FAILED) |^\[  FAILED  \]|tests? (ran|skipped)' "$log" | head -n 30 >&2
}

# The caching allocator rounds blocks up (512 B / 2 MiB) and reuses them, so memcheck sees an overrun only past
# the rounded block; the kernels' own bounds are what it checks here.
part_memcheck() {
  local cs
  if ! cs=$(sanitizer); then
    say "compute-sanitizer not found"
    echo "compute-sanitizer not found" >"$OUT/memcheck.log"
    STATUS=1
    return 1
  fi
  run_step memcheck "${CAP[memcheck]}" "$OUT/memcheck.log" "$cs" --tool memcheck --leak-check no --error-exitcode 3 \
    "$BIN/tests/test_cuda" --gtest_filter="$SANITIZER_FILTER"
  grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$OUT/memcheck.log" | tail -n 4 >&2
}

part_ops() {
  run_step bench_cuda_ops "${CAP[ops]}" "$OUT/bench.log" bash -c "'$BIN/bench/bench_cuda_ops' --reps $REPS > '$OUT/cuda_ops.jsonl'"
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
part_train() {
  local f=$OUT/train_step.jsonl S="--steps 30 --warmup 5" c=${CAP[train]} k
  train_glance "small dense fused" "$c" "$f" $S --attention-kernel fused
  train_torch "small dense all" "$c" "$f" $S --attention all
  train_glance "small rlt fused" "$c" "$f" $S --attention-kernel fused --policy rlt
  k=$(counts_of "$f" 192)
  if [[ -n $k ]]; then train_torch "small rlt (padded) all" "$c" "$f" $S --attention all --counts "$k"; fi
  train_glance "small dense-synthetic fused" "$c" "$f" $S --attention-kernel fused --policy dense --data synthetic
}

# The other variants of the small step: the reference attention kernel, TF32, mixed precision (bf16 attention
# core, both sides).
part_train_variants() {
  local f=$OUT/train_step_variants.jsonl S="--steps 30 --warmup 5" c=${CAP[train-variants]}
  train_glance "small dense fused_bf16 (mixed precision: bf16 attention core)" "$c" "$f" $S --attention-kernel fused_bf16
  train_torch "small dense sdpa_bf16 (the same mixed precision)" "$c" "$f" $S --attention sdpa_bf16
  train_glance "small dense reference" "$c" "$f" $S --attention-kernel reference
  train_glance "small dense fused tf32" "$c" "$f" $S --attention-kernel fused --tf32
  train_torch "small dense sdpa tf32" "$c" "$f" $S --attention sdpa --tf32
}

# ViT-B's step (dim 768, depth 12, 8 clips x 1568 tokens).
part_train_base() {
  local f=$OUT/train_step_base.jsonl S="--steps 20 --warmup 3" c=${CAP[train-base]} k
  train_glance "base dense fused" "$c" "$f" $S --attention-kernel fused --preset base
  train_torch "base dense all" "$c" "$f" $S --attention all --preset base
  train_glance "base rlt fused" "$c" "$f" $S --attention-kernel fused --preset base --policy rlt
  k=$(counts_of "$f" 768)
  if [[ -n $k ]]; then train_torch "base rlt (padded) all" "$c" "$f" $S --attention all --preset base --counts "$k"; fi
  train_glance "base dense-synthetic fused" "$c" "$f" $S --attention-kernel fused --preset base --policy dense --data synthetic
}

# The fused attention kernels against PyTorch SDPA for one precision (fp16 has no PyTorch side here), each side
# under its own cap so that one slow precision cannot starve the next. SDPA's math backend materialises the
# L x L scores and is no target: it runs only up to N = 2048.
attention_dtype() {  # DTYPE CAP
  local dt=$1 g=$OUT/attention_glance.jsonl t=$OUT/attention_torch.jsonl
  run_step "bench_attention_cuda $dt" "$2" "$OUT/attention.log" \
    bash -c "'$BIN/bench/bench_attention_cuda' --dtypes $dt --reps $REPS --max-n $ATTENTION_MAX_N >> '$g'"
  [[ $dt == fp16 ]] && return
  run_step "attention_torch $dt" "$2" "$OUT/attention.log" \
    bash -c "$PY bench/attention_torch.py --dtypes $dt --reps $REPS --max-n $ATTENTION_MAX_N --skip-math-above 2048 --from-glance '$g' >> '$t'"
}
part_attention() { attention_dtype bf16 "${CAP[attention]}"; attention_dtype fp32 "${CAP[attention]}"; }
part_attention_fp16() { attention_dtype fp16 "${CAP[attention-fp16]}"; }

# The README's main job (RLT vs dense on the built-in dataset) on the GPU.
part_demo() {
  local log=$OUT/demo_cuda.log
  run_step "glance demo --device cuda" "${CAP[demo]}" "$log" "$BIN/glance" demo --device cuda --no-progress --out "$OUT/demo-runs"
  last_json "$log" >"$OUT/demo_cuda.json"
  (cd "$OUT" && tar czf demo-metrics.tar.gz demo-runs && rm -rf demo-runs) 2>/dev/null
  cat "$OUT/demo_cuda.json" >&2
}

summarize() {
  $PY scripts/gpu_summary.py --env "$OUT/env.txt" "$OUT" >"$OUT/summary-$LABEL.md" || say "gpu_summary.py failed"
  cat "$OUT/summary-$LABEL.md"
}

# --pack: the logs and JSON lines into one archive; env.txt and the summaries stay beside it.
pack_out() {
  local files
  files=$(cd "$OUT" && find . -maxdepth 1 -type f ! -name 'summary-*.md' ! -name env.txt ! -name 'gpu-run-*.tar.gz' | sort)
  [[ -n $files ]] || return 0
  (cd "$OUT" && tar czf "gpu-run-$LABEL.tar.gz" $files && rm -f $files)
  say "packed $(echo "$files" | wc -l) files into $OUT/gpu-run-$LABEL.tar.gz"
}

finish() {
  say "run done in $(($(date +%s) - START)) s"
  summarize
  [[ -n $PACK ]] && pack_out
}

case "$COMMAND" in
  prebuild) stage_prebuild ;;
  deps) stage_deps ;;
  build)
    write_env
    do_build
    rc=$?
    tail -n 3 "$OUT/build.log" >&2
    exit $rc
    ;;
  run)
    write_env
    say "parts ${PARTS//,/ }; budget $( ((BUDGET)) && echo "${BUDGET}s" || echo none)"
    choose_binaries || { STATUS=1; finish; exit 1; }
    for part in ${PARTS//,/ }; do
      "part_${part//-/_}"
    done
    finish
    exit $STATUS
    ;;
  source-hash) echo "$SOURCE_HASH" ;;
  *) usage ;;
esac
