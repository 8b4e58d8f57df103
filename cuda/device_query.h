// Asking whether a usable CUDA device is present, without failing when there is none.
#pragma once

namespace glance::cuda {

// The number of CUDA devices this process can use: 0 when there is no GPU or no driver. On a machine
// without a driver cudaGetDeviceCount returns an error rather than 0; every error here counts as "none".
int device_count();
bool available();

}  // namespace glance::cuda
