#!/usr/bin/env bash
# Data-parallel training against one process (docs/13-training-on-many-processes.md), on the CPU with mpirun:
#   1. `mpirun -np 1 glance train` gives the very same losses, bit for bit, as `glance train` without MPI;
#   2. `mpirun -np 2`, by tokens (in buckets of 50 kB) and by clips, follows the one-process run: the same 20
#      losses within a relative 1e-5 (measured: about 1.2e-7; the gradient sums add the same numbers in another
#      order, so only rounding differs);
#   3. by tokens, the result's per-step imbalance is no worse than the equal split of clips;
#   4. a 2-rank run stopped at step 10 and continued with --load ends bit for bit as the run without a stop;
#   5. a checkpoint of 2 ranks continues on 1 rank (said in a note), within the same tolerance.
#   tests/scripts/test_data_parallel.sh GLANCE MPIRUN
set -euo pipefail
glance=$1
mpirun=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1  # the same threads in every run; two ranks share the two cores of a small machine
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi  # Open MPI's flag for root
mpi=("$mpirun" --oversubscribe --bind-to none)
common=(train --depth 1 --batch-size 8 --train-clips 48 --val-clips 8 --no-progress --steps 20 --seed 3)

run() {  # NAME LAUNCH... -- ARGS...: a bounded run, its output in $dir/NAME.log
  local name=$1; shift
  if ! timeout 120 "$@" > "$dir/$name.log" 2>&1; then
    echo "FAIL: $name: $*"; cat "$dir/$name.log"; exit 1
  fi
}
run one "$glance" "${common[@]}" --metrics "$dir/one.jsonl"
run np1 "${mpi[@]}" -np 1 "$glance" "${common[@]}" --metrics "$dir/np1.jsonl"
run tokens "${mpi[@]}" -np 2 "$glance" "${common[@]}" --shard tokens --bucket-mb 0.05 --metrics "$dir/tokens.jsonl"
run clips "${mpi[@]}" -np 2 "$glance" "${common[@]}" --shard clips --metrics "$dir/clips.jsonl"
run first "${mpi[@]}" -np 2 "$glance" "${common[@]}" --shard clips --stop-after 10 --save "$dir/ck.safetensors" \
  --metrics "$dir/resumed.jsonl"
run second "${mpi[@]}" -np 2 "$glance" "${common[@]}" --shard clips --load "$dir/ck.safetensors" --metrics "$dir/resumed.jsonl"
run on_one "$glance" "${common[@]}" --load "$dir/ck.safetensors" --metrics "$dir/on_one.jsonl"
grep -q "written by a run of 2 rank(s); continuing with 1" "$dir/on_one.log" || { echo "FAIL: no note"; cat "$dir/on_one.log"; exit 1; }

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
def losses(name):
    return [json.loads(l)["loss"] for l in open(f"{d}/{name}.jsonl") if '"loss"' in l]
def result(name):
    return json.loads([l for l in open(f"{d}/{name}.log") if l.startswith("{")][-1])
one = losses("one")
assert len(one) == 20, one
assert losses("np1") == one, ("mpirun -np 1 differs from one process", losses("np1"), one)
for name, first in (("tokens", 0), ("clips", 0), ("on_one", 10)):  # on_one: steps 11 to 20, after the 2-rank part
    other, ref = losses(name), one[first:]
    assert len(other) == len(ref), (name, other)
    worst = max(abs(a - b) / abs(b) for a, b in zip(other, ref))
    print(f"{name}: {len(ref)} losses within a relative {worst:.2e} of one process")
    assert worst < 1e-5, (name, worst, other, ref)
assert losses("resumed") == losses("clips"), ("resumed 2-rank run differs", losses("resumed"), losses("clips"))
p = result("tokens")["parallel"]
print("tokens:", p)
assert p["ranks"] == 2 and p["shard"] == "tokens"
assert 1 <= p["imbalance"] <= p["imbalance_by_clips"], p
assert p["allreduce_bytes_per_step"] > 0 and p["buckets"] >= 1
assert "parallel" not in result("one")
print("data parallel: equivalence, bit-exact 1 rank and resume: ok")
PY
