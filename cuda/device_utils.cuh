// Small device-side helpers shared by the kernels: dtype conversion with the CPU's rules, math overloads for
// float and double, warp and block reductions, and the launch configuration of grid-stride loops.
// Only .cu files include this (it has device code).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "cuda/check.h"

namespace glance::cuda {

// ---- launch configuration ----
// Grid-stride loops: `for (i = global thread id; i < n; i += total threads)`. The grid is capped so that one
// launch never has more blocks than useful (an H100 runs 132 SMs x 2048 threads = 1056 blocks of 256 at once);
// each thread then handles several elements. The cap is a constant, not read off the device, so the work
// split (and with it every floating-point result) depends on shapes alone, never on which GPU runs it.
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

inline unsigned int blocks_for(int64_t work_items, int64_t per_block = kThreads) {
  int64_t b = (work_items + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned int>(b);
}

__device__ __forceinline__ int64_t global_thread_id() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- dtype conversion, as the CPU backend does it (tensor/cpu/elementwise.cpp) ----
// C++ static_cast, except that anything -> bool is `value != 0` (so NaN -> true).
template <typename To, typename From>
__host__ __device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

template <typename T>
__device__ __forceinline__ bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return x != x;
  } else {
    return false;
  }
}

// The type a float row (softmax, layer norm) accumulates in: float for float (like PyTorch's CUDA kernels;
// a tree of partial sums keeps it accurate), double for double.
template <typename T>
using row_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// ---- math overloads: one name for float and double ----
__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dlog(float x) { return logf(x); }
__device__ __forceinline__ double dlog(double x) { return log(x); }
__device__ __forceinline__ float dsqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dsqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float dtanh(float x) { return tanhf(x); }
__device__ __forceinline__ double dtanh(double x) { return tanh(x); }
__device__ __forceinline__ float dsin(float x) { return sinf(x); }
__device__ __forceinline__ double dsin(double x) { return sin(x); }
__device__ __forceinline__ float dcos(float x) { return cosf(x); }
__device__ __forceinline__ double dcos(double x) { return cos(x); }
__device__ __forceinline__ float derf(float x) { return erff(x); }
__device__ __forceinline__ double derf(double x) { return erf(x); }
__device__ __forceinline__ float dpow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double dpow(double a, double b) { return pow(a, b); }
__device__ __forceinline__ float dabs(float x) { return fabsf(x); }
__device__ __forceinline__ double dabs(double x) { return fabs(x); }

template <typename T>
__host__ __device__ __forceinline__ T infinity() {
  return std::numeric_limits<T>::infinity();
}

// ---- reductions across threads ----
// Warp shuffles move 32-bit (or 64-bit) registers; bool and uint8 travel as int.
template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int mask) {
  if constexpr (sizeof(T) < 4) {
    return static_cast<T>(__shfl_xor_sync(0xffffffffu, static_cast<int>(v), mask));
  } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) {
    return static_cast<T>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), mask));
  } else {
    return __shfl_xor_sync(0xffffffffu, v, mask);
  }
}

// Combines the 32 values of a warp with `op` (associative); a butterfly (xor) pattern, so every lane ends up
// with the result. The order of the combinations is fixed, so the result is the same on every run.
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) v = op(v, shfl_xor(v, mask));
  return v;
}

struct AddOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// The row max of softmax: a NaN never wins (it still reaches the output through exp and the sum), exactly as
// the CPU's compare-select `x > m ? x : m`.
struct MaxIgnoringNanOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return b > a ? b : a; }
};

// A "row group": the threads that cooperate on one row of a row kernel (softmax, layer norm, ...). Blocks are
// (32, 8) threads. With kBlock = false each warp (threadIdx.y) owns a row (8 rows per block: short rows); with
// kBlock = true the whole block owns one row (256 threads: long rows).
template <bool kBlock>
struct RowGroup {
  static constexpr int kWarps = 8;
  __device__ __forceinline__ int lane() const { return kBlock ? threadIdx.y * 32 + threadIdx.x : threadIdx.x; }
  __device__ __forceinline__ int size() const { return kBlock ? 32 * kWarps : 32; }
  // The first row of this group and the step to its next row (grid-stride over rows).
  __device__ __forceinline__ int64_t first_row() const {
    return kBlock ? int64_t(blockIdx.x) : int64_t(blockIdx.x) * kWarps + threadIdx.y;
  }
  __device__ __forceinline__ int64_t row_step() const {
    return kBlock ? int64_t(gridDim.x) : int64_t(gridDim.x) * kWarps;
  }
  // Combines one value per thread of the group; every thread gets the result. In block mode `smem` holds one
  // slot per warp; the trailing __syncthreads lets the next call reuse it. Block mode must be reached by every
  // thread of the block (the row loops are uniform across a block: their bounds depend on blockIdx only).
  template <typename T, typename Op>
  __device__ __forceinline__ T reduce(T v, Op op, T* smem) const {
    v = warp_reduce(v, op);
    if constexpr (kBlock) {
      if (threadIdx.x == 0) smem[threadIdx.y] = v;
      __syncthreads();
      v = smem[0];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) v = op(v, smem[w]);
      __syncthreads();
    }
    return v;
  }
};
// Rows up to this long get a warp each; longer rows a whole block.
constexpr int64_t kWarpRowLimit = 1024;

inline dim3 row_block() { return dim3(32, RowGroup<false>::kWarps); }
inline unsigned int row_grid(int64_t rows, bool block_per_row) {
  return blocks_for(rows, block_per_row ? 1 : RowGroup<false>::kWarps);
}

// Calls launch(block_per_row, grid) for `rows` rows of length C, where block_per_row is std::true_type for long
// rows (a block per row) and std::false_type for short ones (a warp per row), so that a kernel's kBlock is a
// compile-time constant:
//   launch_rows(rows, C, [&](auto block, unsigned grid) {
//     softmax_kernel<T, decltype(block)::value><<<grid, row_block()>>>(...);
//   });
template <typename Launch>
void launch_rows(int64_t rows, int64_t C, Launch&& launch) {
  if (rows == 0) return;
  if (C > kWarpRowLimit) {
    launch(std::true_type{}, row_grid(rows, true));
  } else {
    launch(std::false_type{}, row_grid(rows, false));
  }
  GLANCE_CUDA_CHECK_LAUNCH();
}

}  // namespace glance::cuda
