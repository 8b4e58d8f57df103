#!/usr/bin/env bash
# Installs what glance needs from Debian's packages, only what is missing. Safe to run again.
# As root it installs; as anyone else it prints the exact command to run.
#   required: a C++20 compiler, cmake, GoogleTest, stb_image (frames), OpenMP
#   data parallelism: Open MPI (mpirun, and the library glance links when GLANCE_MPI finds it)
#   optional: OpenBLAS (the GEMM benchmark's reference), numpy (scripts that read .npy/.safetensors)
#   fuzzing (scripts/fuzz.sh, .ci/run): clang, libFuzzer and the sanitizer runtimes (libclang-rt-dev), and
#     LLVM's OpenMP runtime for clang (libomp-dev)
# The CUDA toolkit is not installed here: a CPU-only build needs nothing from it.
set -euo pipefail

packages=(g++ cmake make libgtest-dev libgmock-dev libstb-dev libopenblas-dev python3-numpy openmpi-bin libopenmpi-dev
          clang libclang-rt-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root:"
  echo "  sudo sh -c '$cmd'"
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
sh -c "$cmd"
