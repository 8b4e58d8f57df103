#!/usr/bin/env bash
# glance vs PyTorch (CPU) on the same RLT training step, in one run. The two programs alternate for
# ROUNDS rounds (glance, PyTorch, glance, PyTorch, ...; 20 timed steps each), since on a shared machine
# the speed of either drifts over minutes; the result line takes the median of each program's per-round
# medians: {"bench","case","glance","reference","unit","ratio"} (ratio > 1: glance is faster).
#   bench/compare_train_step.sh [BUILD_DIR] [THREADS] [ROUNDS]
# Needs Debian's python3-torch for /usr/bin/python3 (apt-get install python3-torch).
set -euo pipefail
build=${1:-build}
threads=${2:-2}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
lines=()
for ((r = 0; r < rounds; r++)); do
  g=$("$build/bench/bench_train_step" --threads "$threads" --steps 20 2>/dev/null | tail -n 1)
  t=$(/usr/bin/python3 "$here/train_step_torch.py" --threads "$threads" --steps 20 2>/dev/null | tail -n 1)
  echo "$g"
  echo "$t"
  lines+=("$g" "$t")
done
/usr/bin/python3 - "${lines[@]}" <<'PY'
import json, statistics, sys
rows = [json.loads(a) for a in sys.argv[1:]]
g = [r["glance"] for r in rows if "glance" in r]
t = [r["median_ms"] for r in rows if "median_ms" in r]
torch = next(r for r in rows if "median_ms" in r)
print(json.dumps({"bench": "train_step", "case": rows[0]["case"], "glance": statistics.median(g),
                  "reference": statistics.median(t), "reference_impl": "pytorch_cpu " + torch.get("torch", "?"),
                  "unit": "ms/step", "ratio": round(statistics.median(t) / statistics.median(g), 3),
                  "rounds": len(g), "glance_rounds": g, "reference_rounds": t, "threads": rows[0]["threads"]}))
PY
