// Device helpers shared by the bf16 / fp16 tensor-core kernels (fused_forward_bf16.cu,
// fused_backward_bf16.cu). Internal.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/attention/common.cuh"

namespace glance::cuda::attention::detail {

// Rounding fp32 to the 16-bit input type (round to nearest even), and back.
template <typename T>
struct HalfOps;
template <>
struct HalfOps<__nv_bfloat16> {
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};
template <>
struct HalfOps<__half> {
  static __device__ __forceinline__ __half from_float(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
};

// Shared-memory regions are laid out at multiples of 128 bytes (WMMA wants 32-byte aligned pointers).
__host__ __device__ constexpr int round_up_128(int bytes) { return (bytes + 127) / 128 * 128; }

// Copies rows [0, ROWS) of a row-major [*, D] 16-bit matrix into shared memory with row stride LD
// (elements), 16 bytes (8 elements) per thread per step; rows >= valid_rows become zeros. A row stride
// of D + 8 elements keeps rows 16-byte aligned and shifts consecutive rows by 4 banks, which keeps the
// WMMA fragment loads free of bank conflicts.
template <int ROWS, int D, int LD, typename T>
__device__ __forceinline__ void load_rows_half(T* __restrict__ smem, const T* __restrict__ g, int valid_rows) {
  static_assert(D % 8 == 0 && LD % 8 == 0, "rows move as 16-byte vectors");
  constexpr int kVecPerRow = D / 8;
  for (int idx = threadIdx.x; idx < ROWS * kVecPerRow; idx += kThreads) {
    const int r = idx / kVecPerRow, c = (idx % kVecPerRow) * 8;
    uint4 x = make_uint4(0u, 0u, 0u, 0u);  // all-zero bits are +0 in bf16 and fp16
    if (r < valid_rows) x = __ldg(reinterpret_cast<const uint4*>(g + static_cast<int64_t>(r) * D + c));
    *reinterpret_cast<uint4*>(smem + r * LD + c) = x;
  }
}

}  // namespace glance::cuda::attention::detail
