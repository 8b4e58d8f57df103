#!/usr/bin/env bash
# Data parallelism on this machine: the same training run (same global batch, same steps) as 2 ranks
# (mpirun -np 2) with T/2 threads each, sharded by tokens and by clips, as 1 process with T/2 threads (the
# reference: what one rank alone does) and as 1 process with all T threads, alternated and repeated; one JSON line per run and one per case with the
# medians: time per step, communication per step, bytes all-reduced per step (docs/13).
#   bench/bench_data_parallel.sh [BUILD_DIR] [REPEATS]
# Each case line: bench, case, glance (2 ranks by tokens, ms per step), two_by_clips_ms, reference (1 process, T/2 threads), unit, ratio
# (reference / glance: 2 is perfect scaling), and one_process_all_threads_ms. The load average is printed first
# and last: other work on the machine slows the runs unevenly (OpenMP's threads wait for each other most).
set -euo pipefail
build=${1:-build}
repeats=${2:-3}
glance="$build/glance"
mpirun=$(command -v mpirun) || { echo "bench_data_parallel: no mpirun (scripts/install-deps.sh installs Open MPI)"; exit 1; }
threads=$(nproc)
half=$(( threads > 1 ? threads / 2 : 1 ))
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cases=(
  "small-d192-depth4-batch8|--preset small --depth 4 --batch-size 8 --train-clips 64 --steps 12"
  "tiny-batch32|--batch-size 32 --train-clips 256 --steps 40"
)
echo "{\"bench\": \"data_parallel_load\", \"when\": \"start\", \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
for entry in "${cases[@]}"; do
  name=${entry%%|*}
  read -r -a opts <<< "${entry#*|}"
  common=(train "${opts[@]}" --val-clips 8 --no-progress --metrics "$dir/m.jsonl")
  for ((k = 0; k < repeats; ++k)); do
    OMP_NUM_THREADS=$threads timeout 600 "$glance" "${common[@]}" > "$dir/all.$k.log" 2>&1
    OMP_NUM_THREADS=$half timeout 600 "$glance" "${common[@]}" > "$dir/one.$k.log" 2>&1
    OMP_NUM_THREADS=$half timeout 600 "$mpirun" --oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS \
      "$glance" "${common[@]}" > "$dir/two.$k.log" 2>&1
    OMP_NUM_THREADS=$half timeout 600 "$mpirun" --oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS \
      "$glance" "${common[@]}" --shard clips > "$dir/clips.$k.log" 2>&1
  done
  python3 - "$dir" "$name" "$repeats" "$threads" "$half" <<'PY'
import json, statistics, sys
d, name, repeats, threads, half = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def result(path):
    return json.loads([l for l in open(path) if l.startswith("{")][-1])
one = [result(f"{d}/one.{k}.log") for k in range(repeats)]
full = [result(f"{d}/all.{k}.log") for k in range(repeats)]
clips = [result(f"{d}/clips.{k}.log") for k in range(repeats)]
two = [result(f"{d}/two.{k}.log") for k in range(repeats)]
for k in range(repeats):
    p = two[k]["parallel"]
    print(json.dumps({"bench": "data_parallel_run", "case": name, "repeat": k, "one_step_ms": one[k]["step_ms"],
                      "one_all_threads_step_ms": full[k]["step_ms"],
                      "two_step_ms": two[k]["step_ms"], "two_by_clips_step_ms": clips[k]["step_ms"], "comm_ms_per_step": p["comm_ms_per_step"],
                      "wait_ms_per_step": p["wait_ms_per_step"]}))
m1 = statistics.median(r["step_ms"] for r in one)
m2 = statistics.median(r["step_ms"] for r in two)
p = two[0]["parallel"]
print(json.dumps({"bench": "data_parallel", "case": name, "glance": round(m2, 2), "reference": round(m1, 2), "unit": "ms/step",
                  "ratio": round(m1 / m2, 3), "threads_per_rank": int(half), "threads_all": int(threads),
                  "one_process_all_threads_ms": round(statistics.median(r["step_ms"] for r in full), 2),
                  "two_by_clips_ms": round(statistics.median(r["step_ms"] for r in clips), 2),
                  "comm_ms_per_step": round(statistics.median(r["parallel"]["comm_ms_per_step"] for r in two), 3),
                  "wait_ms_per_step": round(statistics.median(r["parallel"]["wait_ms_per_step"] for r in two), 3),
                  "allreduce_bytes_per_step": p["allreduce_bytes_per_step"], "buckets": p["buckets"],
                  "buckets_started_in_backward": p["buckets_started_in_backward"],
                  "imbalance_by_tokens": p.get("imbalance_by_tokens"), "imbalance_by_clips": p.get("imbalance_by_clips"),
                  "parameters": two[0]["parameters"]}))
PY
done
echo "{\"bench\": \"data_parallel_load\", \"when\": \"end\", \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
