#!/usr/bin/env bash
# Trains every attention design that `glance variants` lists on the built-in dataset with the same
# budget, once on dense batches and once on RLT batches, and collects each run's final JSON line
# (accuracy, parameters, forward GFLOP per clip, step time, peak memory) into OUT/results.jsonl.
# Then scripts/variants_table.py turns that into the table and plot of docs/10-attention-variants.md.
#
#   scripts/compare_variants.sh [BUILD_DIR] [OUT]          (defaults: build, runs/variants)
#   VARIANTS="joint divided" EPOCHS=2 TRAIN_CLIPS=3600 scripts/compare_variants.sh
#
# Budget per run: TRAIN_CLIPS clips x EPOCHS epochs in batches of 32 (default 4000 x 2 = 250 steps),
# the tiny preset (dim 64, depth 3, 4 heads) on FRAMES frames of 32 x 32 (default 8: a 4 x 4 x 4 grid of
# 2 x 8 x 8 tubelets, 64 tokens per clip), the same seed for every run. This budget is far short of
# convergence (the demo's 900 steps on 16 frames reach 0.95): it compares how fast each design learns,
# and what a step costs, at a size where all thirteen designs x 2 fit in about an hour on 2 cores.
# On a machine shared with other work, run it with OMP_NUM_THREADS=1: OpenMP threads that spin-wait on
# an oversubscribed machine made a step 5x slower in our measurements. Accuracy, parameters, FLOPs and
# peak memory do not depend on the load; step_ms does.
set -euo pipefail
build="${1:-build}"
out="${2:-runs/variants}"
glance="$build/glance"
[[ -x "$glance" ]] || { echo "compare_variants.sh: $glance not found (build first: see README.md)" >&2; exit 1; }
mkdir -p "$out"
variants="${VARIANTS:-$("$glance" variants | grep -v '^ ')}"
epochs="${EPOCHS:-2}"
train_clips="${TRAIN_CLIPS:-4000}"
val_clips="${VAL_CLIPS:-512}"
frames="${FRAMES:-8}"
results="$out/results.jsonl"
: > "$results.partial"
for variant in $variants; do
  for drop in dense rlt; do
    log="$out/$variant-$drop.log"
    echo "== $variant ($drop) $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg) OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}" >&2
    "$glance" train --preset tiny --frames "$frames" --attention "$variant" --drop "$drop" --epochs "$epochs" \
      --train-clips "$train_clips" --val-clips "$val_clips" --batch-size 32 --seed 0 --no-progress \
      --metrics "$out/$variant-$drop.metrics.jsonl" > "$log" 2>&1 || { echo "failed: see $log" >&2; exit 1; }
    line="$(tail -n 1 "$log")"
    echo "{\"attention\":\"$variant\",\"drop\":\"$drop\",\"result\":$line}" >> "$results.partial"
    echo "$line" >&2
  done
done
mv "$results.partial" "$results"  # only a complete comparison replaces the previous one
echo "wrote $results" >&2
