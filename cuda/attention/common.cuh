// Device helpers shared by the fused attention kernels (cuda/attention/*.cu). Internal: not installed.
//
// The fp32 kernels (rungs 3 and 4) all use one thread layout, so the index arithmetic is written once:
//
//   128 threads = 4 warps, seen as a 16 x 8 grid:  ty = threadIdx.x / 8 (0..15),  tx = threadIdx.x % 8
//
//   a thread owns the micro-tile of an [M, N] block made of rows  ty + 16 i  (i < M / 16)
//                                                  and columns tx + 8 j   (j < N / 8)
//
// Row ty + 16 i of any block is therefore owned by the 8 threads tx = 0..7 of one ty, which sit in one
// warp (lane = (ty % 4) * 8 + tx): a row's max and sum are an xor-shuffle over lane bits 0..2, and a row
// written to shared memory by its owners is read back by the same warp after a __syncwarp only. The
// interleaved ("strided") ownership makes the shared-memory reads of one micro-GEMM step hit distinct
// banks: see micro_gemm below.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace glance::cuda::attention::detail {

constexpr float kLog2e = 1.4426950408889634f;  // exp(x) = exp2(x * log2(e))
constexpr float kLn2 = 0.6931471805599453f;    // log(x) = log2(x) * ln(2)

constexpr int kThreads = 128;  // every kernel here runs 4 warps per CTA
constexpr int kTY = 16, kTX = 8;

// Shared-memory rows of fp32 tiles are padded by one float: a row stride of width + 1 with width a
// multiple of 32 is 1 (mod 32 banks), so consecutive rows start in consecutive banks.
__host__ __device__ constexpr int padded(int width) { return width + 1; }

// Clip b of the pack: its first token and its length.
struct ClipRange {
  int64_t begin;
  int len;
};
__device__ __forceinline__ ClipRange clip_range(const int32_t* __restrict__ cu_seqlens, int b) {
  const int begin = cu_seqlens[b];
  return {static_cast<int64_t>(begin), cu_seqlens[b + 1] - begin};
}

// Copies rows [0, ROWS) of a row-major [*, D] fp32 matrix that starts at `g` into shared memory with row
// stride LD. Rows >= valid_rows lie past the clip: they are not read and are stored as zeros (so a
// product with them adds nothing, and nothing NaN can leak in from a neighbouring clip or past the end).
// Global reads are float4 (16 bytes per thread, consecutive threads read consecutive 16-byte pieces of a
// row: coalesced); `g` must be 16-byte aligned and D a multiple of 4. The shared stores are scalar
// because the padded stride LD breaks 16-byte alignment.
template <int ROWS, int D, int LD>
__device__ __forceinline__ void load_rows_f32(float* __restrict__ smem, const float* __restrict__ g,
                                              int valid_rows) {
  static_assert(D % 4 == 0, "rows are read as float4");
  constexpr int kVecPerRow = D / 4;
  for (int idx = threadIdx.x; idx < ROWS * kVecPerRow; idx += kThreads) {
    const int r = idx / kVecPerRow, c = (idx % kVecPerRow) * 4;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < valid_rows) x = __ldg(reinterpret_cast<const float4*>(g + static_cast<int64_t>(r) * D + c));
    float* s = smem + r * LD + c;
    s[0] = x.x, s[1] = x.y, s[2] = x.z, s[3] = x.w;
  }
}

// acc[i][j] += sum_k A(i, k) * B(k, j) over k < K, for this thread's TM x TN micro-tile. a(i, k) returns
// the element of A in the thread's i-th row, b(k, j) the element of B in its j-th column (lambdas that
// read shared memory: the caller states the layout, e.g. A(i, k) = Qs[(ty + 16 i) * LD + k]).
// Per k: TM + TN shared loads feed TM * TN FMAs. Within a warp the 4 values of ty are 4 consecutive rows
// and the 8 values of tx 8 consecutive columns, so with strides of 1 (mod 32) every load is conflict
// free (threads with equal addresses get a broadcast).
template <int TM, int TN, int K, typename AF, typename BF>
__device__ __forceinline__ void micro_gemm(float (&acc)[TM][TN], AF a, BF b) {
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    float av[TM], bv[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) av[i] = a(i, k);
#pragma unroll
    for (int j = 0; j < TN; ++j) bv[j] = b(k, j);
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

template <int TM, int TN>
__device__ __forceinline__ void zero(float (&acc)[TM][TN]) {
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
}

// Max and sum over the 8 threads (tx = 0..7, lane bits 0..2) that own one row.
__device__ __forceinline__ float row_max8(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
}
__device__ __forceinline__ float row_sum8(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  x += __shfl_xor_sync(0xffffffffu, x, 2);
  return x + __shfl_xor_sync(0xffffffffu, x, 4);
}

}  // namespace glance::cuda::attention::detail
