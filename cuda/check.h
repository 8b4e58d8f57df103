// Checked CUDA and cuBLAS calls: every runtime call in cuda/ goes through one of these, so a failure
// becomes a std::runtime_error that says where and what, instead of an error code nobody looked at.
//
//   GLANCE_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
//   -> "CUDA error at cuda/cuda_backend.cu:87: cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice) failed:
//       invalid argument (cudaErrorInvalidValue)"
//
//   GLANCE_CUBLAS_CHECK(cublasSgemm(...));   -> "cuBLAS error at ...: cublasSgemm(...) failed: ... (CUBLAS_STATUS_...)"
//
//   my_kernel<<<grid, block>>>(...);
//   GLANCE_CUDA_CHECK_LAUNCH();              -> catches a bad launch configuration right at the launch.
//
// Kernels run asynchronously: an error *inside* a kernel (an illegal address, a trap) is reported by
// whichever CUDA call happens to come next, often far from the kernel that caused it. To find the culprit,
// run with the environment variable GLANCE_CUDA_SYNC=1: GLANCE_CUDA_CHECK_LAUNCH then waits for every kernel
// to finish (cudaDeviceSynchronize) and reports its error at the launching line. (Slow; for debugging only.
// CUDA_LAUNCH_BLOCKING=1 does the same for the whole runtime.)
//
// This header is plain C++ (no device code), so tests and .cpp files may include it too.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace glance::cuda {

// Throw std::runtime_error("CUDA error at FILE:LINE: CALL failed: <description> (<error name>)").
[[noreturn]] void throw_cuda_error(cudaError_t error, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

// The name of a cuBLAS status ("CUBLAS_STATUS_NOT_INITIALIZED"); cuBLAS's own string, with a fallback.
const char* cublas_status_name(cublasStatus_t status);

// After a kernel launch: reports a launch error (cudaGetLastError), and with GLANCE_CUDA_SYNC=1 in the
// environment also waits for the kernel and reports what went wrong inside it.
void check_launch(const char* file, int line);
// Whether GLANCE_CUDA_SYNC=1 is set (read once).
bool sync_after_launch();

}  // namespace glance::cuda

#define GLANCE_CUDA_CHECK(call)                                                  \
  do {                                                                           \
    const cudaError_t glance_cuda_error_ = (call);                               \
    if (glance_cuda_error_ != cudaSuccess) {                                     \
      ::glance::cuda::throw_cuda_error(glance_cuda_error_, #call, __FILE__, __LINE__); \
    }                                                                            \
  } while (0)

#define GLANCE_CUBLAS_CHECK(call)                                                \
  do {                                                                           \
    const cublasStatus_t glance_cublas_status_ = (call);                         \
    if (glance_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                        \
      ::glance::cuda::throw_cublas_error(glance_cublas_status_, #call, __FILE__, __LINE__); \
    }                                                                            \
  } while (0)

#define GLANCE_CUDA_CHECK_LAUNCH() ::glance::cuda::check_launch(__FILE__, __LINE__)
