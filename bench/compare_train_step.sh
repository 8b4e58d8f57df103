#!/usr/bin/env bash
# glance vs PyTorch (CPU) on the same RLT training step, in one run: prints both JSON lines and a ratio
# line {"bench","case","glance","reference","unit","ratio"} (ratio > 1: glance is faster).
#   bench/compare_train_step.sh [BUILD_DIR] [THREADS]
# Needs Debian's python3-torch for /usr/bin/python3 (apt-get install python3-torch).
set -euo pipefail
build=${1:-build}
threads=${2:-2}
here=$(cd "$(dirname "$0")" && pwd)
glance_line=$("$build/bench/bench_train_step" --threads "$threads" --steps 20 2>/dev/null | tail -n 1)
torch_line=$(/usr/bin/python3 "$here/train_step_torch.py" --threads "$threads" --steps 20 2>/dev/null | tail -n 1)
echo "$glance_line"
echo "$torch_line"
/usr/bin/python3 - "$glance_line" "$torch_line" <<'PY'
import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"bench": "train_step", "case": g["case"], "glance": g["glance"], "reference": t["median_ms"],
                  "reference_impl": "pytorch_cpu " + t.get("torch", "?"), "unit": "ms/step",
                  "ratio": round(t["median_ms"] / g["glance"], 3), "threads": g["threads"]}))
PY
