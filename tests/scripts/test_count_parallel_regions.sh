#!/usr/bin/env bash
# scripts/count_parallel_regions.sh on two dense training steps of the tiny model, with 2 threads:
#  - the script counts something and names the functions (gemm_parallel among them);
#  - the batched matmul keeps attention's many small products in one region per batch (docs/01-tensors.md,
#    "Batched matmul"): the GEMM wakes the threads fewer than 300 times here. With the rule before that fix
#    (each of the 128 [128 x 16] x [16 x 128] products of a step split over the threads) it woke them 5,470
#    times for the same command.
#   tests/scripts/test_count_parallel_regions.sh GLANCE_PROGRAM
set -euo pipefail
glance=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
out=$(OMP_NUM_THREADS=2 "$here/scripts/count_parallel_regions.sh" "$glance" train --no-rlt --steps 2 \
  --train-clips 64 --val-clips 32 --no-progress)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
read -r woke all _ < <(echo "$out" | grep ' in all$') || fail "no 'in all' line"
[ "$all" -gt 0 ] && [ "$woke" -gt 0 ] && [ "$woke" -le "$all" ] || fail "totals: waking $woke, all $all"
read -r gemm_woke gemm_all _ < <(echo "$out" | grep 'gemm_parallel') || fail "gemm_parallel not named"
[ "$gemm_all" -gt 1000 ] || fail "gemm_parallel counted $gemm_all times, expected every product (> 1000)"
[ "$gemm_woke" -lt 300 ] || fail "the GEMM woke the threads $gemm_woke times (expected < 300: one region per batch)"
echo "PASS: the GEMM woke the threads $gemm_woke times in $gemm_all products"
