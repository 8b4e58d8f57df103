// fp32 <-> bf16 / fp16 conversion of whole buffers, for callers that hold fp32 data and want the
// tensor-core kernels (rung 6): the autograd kernels "fused_bf16" and "fused_fp16"
// (fused_attention_op.cpp) round q, k, v and the incoming gradient with round_to_half and widen the
// results with widen_from_half. Grid-stride loops launched like the backend's elementwise kernels
// (cuda/device_utils.cuh); memory-bound (6 bytes per element).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

#include "cuda/attention/fused_attention.h"
#include "cuda/attention/half_common.cuh"
#include "cuda/device_utils.cuh"

namespace glance::cuda::attention {

namespace {

using detail::HalfOps;

template <typename T>
__global__ void round_kernel(const float* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    y[i] = HalfOps<T>::from_float(x[i]);  // round to nearest even; beyond fp16's range: +-inf
  }
}

template <typename T>
__global__ void widen_kernel(const T* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    y[i] = HalfOps<T>::to_float(x[i]);  // exact: every bf16 and fp16 value is a float
  }
}

// A failed launch throws naming the conversion and its size (an error while running surfaces at the next
// checked call, e.g. the attention kernel's own check, which synchronises under GLANCE_CUDA_DEBUG=1).
void check_cast_launch(const char* what, int64_t n) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return;
  throw std::runtime_error(std::string("fused attention: ") + what + " of " + std::to_string(n) +
                           " elements failed at launch: " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

void check_cast(const char* what, const void* a, const void* b, int64_t n) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative element count " + std::to_string(n));
  if (n > 0 && (a == nullptr || b == nullptr)) throw std::invalid_argument(std::string(what) + ": null pointer");
}

}  // namespace

void round_to_half(HalfType type, const float* x, void* y, int64_t n, cudaStream_t stream) {
  check_cast("round_to_half", x, y, n);
  if (n == 0) return;
  const unsigned grid = blocks_for(n);  // the backend's grid-stride launch shape (cuda/device_utils.cuh)
  if (type == HalfType::BFloat16) {
    round_kernel<__nv_bfloat16><<<grid, glance::cuda::kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(y), n);
  } else {
    round_kernel<__half><<<grid, glance::cuda::kThreads, 0, stream>>>(x, static_cast<__half*>(y), n);
  }
  check_cast_launch("round_to_half", n);
}

void widen_from_half(HalfType type, const void* x, float* y, int64_t n, cudaStream_t stream) {
  check_cast("widen_from_half", x, y, n);
  if (n == 0) return;
  const unsigned grid = blocks_for(n);  // the backend's grid-stride launch shape (cuda/device_utils.cuh)
  if (type == HalfType::BFloat16) {
    widen_kernel<__nv_bfloat16><<<grid, glance::cuda::kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), y,
                                                                             n);
  } else {
    widen_kernel<__half><<<grid, glance::cuda::kThreads, 0, stream>>>(static_cast<const __half*>(x), y, n);
  }
  check_cast_launch("widen_from_half", n);
}

}  // namespace glance::cuda::attention
