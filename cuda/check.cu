// The error reporting behind GLANCE_CUDA_CHECK / GLANCE_CUBLAS_CHECK / GLANCE_CUDA_CHECK_LAUNCH (check.h).
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/check.h"

namespace glance::cuda {

void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line) {
  // A failed call also sets the runtime's "last error"; clear it, so that the next, unrelated check does
  // not report this error a second time. (Sticky errors, such as an illegal address inside a kernel, stay:
  // the context is unusable after them and every later call fails too.)
  cudaGetLastError();
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cudaGetErrorString(error) + " (" + cudaGetErrorName(error) + ")");
}

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  // cublasGetStatusString gives a sentence ("the library was not initialized"); the name is what to search for.
  throw std::runtime_error(std::string("cuBLAS error at ") + file + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cublasGetStatusString(status) + " (" + cublas_status_name(status) + ")");
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("GLANCE_CUDA_SYNC");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return on;
}

void check_launch(const char* file, int line) {
  cudaError_t error = cudaGetLastError();  // a bad configuration (too many threads, too much shared memory)
  if (error != cudaSuccess) throw_cuda_error(error, "kernel launch", file, line);
  if (sync_after_launch()) {
    error = cudaDeviceSynchronize();  // what went wrong while the kernel ran
    if (error != cudaSuccess) throw_cuda_error(error, "kernel execution (GLANCE_CUDA_SYNC=1)", file, line);
  }
}

}  // namespace glance::cuda
