#!/usr/bin/env bash
# A rank that dies or hangs stops a data-parallel run within a bounded time, named, and the last checkpoint
# stays whole (docs/13-training-on-many-processes.md):
#   1. rank 1 killed with SIGKILL: mpirun notices, names rank 1 and ends the run, non-zero, within 30 s;
#   2. rank 1 stopped with SIGSTOP (a hang): rank 0 gives up after --dist-timeout 5 s naming rank 1, and the
#      run ends non-zero within 30 s;
#   in both, the last checkpoint written (--save-every 5) loads (glance eval validates every tensor).
#   tests/scripts/test_data_parallel_faults.sh GLANCE MPIRUN
set -euo pipefail
glance=$1
mpirun=$2
dir=$(mktemp -d)
launcher=
trap 'if [[ -n $launcher ]]; then kill -9 "$launcher" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

fault() {  # NAME SIGNAL EXPECTED_TEXT
  local name=$1 signal=$2 expected=$3
  local ck="$dir/$name.safetensors" log="$dir/$name.log"
  "$mpirun" --oversubscribe --bind-to none -np 2 "$glance" train --depth 1 --batch-size 8 --train-clips 48 \
    --val-clips 8 --no-progress --steps 100000 --save "$ck" --save-every 5 --dist-timeout 5 \
    --metrics "$dir/$name.jsonl" > "$log" 2>&1 &
  launcher=$!
  local waited=0
  until [[ -f $ck ]] && grep -q "rank 1 of 2, pid" "$log"; do
    sleep 0.2; waited=$((waited + 1))
    if (( waited > 300 )); then echo "FAIL: $name: no checkpoint within 60 s"; cat "$log"; exit 1; fi
  done
  sleep 1  # a few more steps and saves
  local victim
  victim=$(sed -n 's/.*rank 1 of 2, pid \([0-9]*\).*/\1/p' "$log" | head -1)
  local start=$SECONDS
  kill "-$signal" "$victim"
  local status=0
  for _ in $(seq 1 300); do
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$launcher" 2>/dev/null; then
    echo "FAIL: $name: the run still goes 30 s after SIG$signal to rank 1"; kill -9 "$victim" 2>/dev/null; cat "$log"; exit 1
  fi
  wait "$launcher" || status=$?
  launcher=
  kill -9 "$victim" 2>/dev/null || true  # the stopped rank, if the launcher left it
  echo "$name: mpirun exited with $status after $((SECONDS - start)) s"
  if [[ $status == 0 ]]; then echo "FAIL: $name: exit status 0"; cat "$log"; exit 1; fi
  if ! grep -qE "$expected" "$log"; then echo "FAIL: $name: no '$expected' in the output"; cat "$log"; exit 1; fi
  if ! timeout 60 "$glance" eval --load "$ck" --val-clips 8 > "$dir/$name.eval" 2>&1; then
    echo "FAIL: $name: the last checkpoint does not load"; cat "$dir/$name.eval"; exit 1
  fi
  echo "$name: named: $(grep -E "$expected" "$log" | head -1)"
}
fault killed KILL "process rank 1 .*exited on signal 9"
fault hung STOP "rank 0: rank 1 did not (reach|complete) "
echo "data parallel faults: ok"
