#!/usr/bin/env bash
# glance vs PyTorch (CPU) on the training-step benchmark's d192 step: a shorthand for
#   python3 bench/compare_cpu_torch.py --build BUILD_DIR --threads THREADS --rounds ROUNDS --cases d192
# which alternates glance with PyTorch 2.x from PyPI (its three modes: eager explicit attention, eager SDPA,
# torch.compile; a virtual environment under the build folder, made on first use) and Debian's PyTorch 1.13
# where installed, and prints one summary JSON line per case (ratio > 1: glance is faster). The other cases
# (the demo's tiny model dense and RLT, ViT-B forward, attention alone): run compare_cpu_torch.py itself.
#   bench/compare_train_step.sh [BUILD_DIR] [THREADS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/compare_cpu_torch.py" --build "${1:-build}" --threads "${2:-2}" --rounds "${3:-3}" --cases d192
