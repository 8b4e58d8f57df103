#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan, build-fuzz/) and runs each for a bounded time
# from its seed corpus (fuzz/corpus/<target>/) and its regressions (fuzz/regressions/<target>/).
#   scripts/fuzz.sh                          # every target, 60 s each
#   scripts/fuzz.sh --seconds 600 --target frames
#   scripts/fuzz.sh --build-only             # .ci/run's first step
# Exit status 1 when a target crashed (a sanitizer report, a broken promise, a leak, a timeout, an allocation over
# the limit): the input that did it is in build-fuzz/artifacts/<target>/, and after the fix it belongs in
# fuzz/regressions/<target>/, where ctest's Fuzz.Replay.<target> replays it in every build. New inputs the
# fuzzer finds go to build-fuzz/corpus/<target>/ (not to the committed seeds). One summary line per target:
#   fuzz <target>: <seconds> s, <executions> executions, cov <edges>, ft <features>, corpus <inputs>: ok | CRASH
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=(json safetensors npy frames checkpoint)
build=${BUILD:-build-fuzz}
build_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --target) targets=("$2"); shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] || { echo "fuzz.sh: --seconds must be a whole number >= 1" >&2; exit 2; }
for t in "${targets[@]}"; do
  [[ -f "fuzz/fuzz_$t.cpp" ]] || { echo "fuzz.sh: no target '$t' (fuzz/fuzz_$t.cpp)" >&2; exit 2; }
done

command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DGLANCE_FUZZ=ON -DGLANCE_CUDA=OFF -DGLANCE_NATIVE=OFF -DGLANCE_BUILD_TESTS=OFF -DGLANCE_BUILD_BENCH=OFF \
    -DGLANCE_BUILD_EXAMPLES=OFF "${launcher[@]}" > /dev/null
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"
[[ $build_only == 1 ]] && exit 0

# One thread: the CPU kernels' OpenMP teams would only slow each execution. Leaks are reported (the default);
# a report stops the run at once with the input kept.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$t"
  log="$build/fuzz_$t.log"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb / -malloc_limit_mb: over 2 GiB is a bug.
  if "$build/fuzz/fuzz_$t" "$corpus" "fuzz/corpus/$t" "fuzz/regressions/$t" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      > "$log" 2>&1; then
    verdict=ok
  else
    verdict="CRASH (input: $(ls -t "$artifacts" | head -1 | sed "s|^|$artifacts/|"); log: $log)"
    status=1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' <<< "$last" | grep -oE '[0-9]+' || echo "?")
  ft=$(grep -oE 'ft: [0-9]+' <<< "$last" | grep -oE '[0-9]+' || echo "?")
  inputs=$(find "$corpus" -type f | wc -l)
  echo "fuzz $t: $seconds s, $runs executions, cov $cov, ft $ft, corpus $inputs: $verdict"
  [[ $verdict == ok ]] || tail -40 "$log"
done
exit $status
