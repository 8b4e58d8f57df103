#include <cuda_runtime.h>

#include "cuda/device_query.h"

namespace glance::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

bool available() { return device_count() > 0; }

}  // namespace glance::cuda
