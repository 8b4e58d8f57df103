// Fused (FlashAttention-style) attention on a CUDA device: rungs 3 to 6 of the attention ladder
// (docs/09-fused-attention.md). Rung 1 is nn::reference_attention, rung 2 nn::tiled_attention (the CPU
// online softmax); the CUDA rungs compute exactly what rung 2 computes, tile by tile, on the GPU:
//
//   rung 3  fused_forward_fp32.cu   fp32 forward, FlashAttention-2 structure, CUDA cores (FFMA)
//   rung 4  fused_backward_fp32.cu  fp32 backward: D = rowsum(dO * O), dK/dV per key tile with dQ by
//                                   atomicAdd, or a deterministic second kernel for dQ
//   rung 5  (all of them)           variable length: clips packed back to back, cu_seqlens
//   rung 6  fused_forward_bf16.cu   bf16 / fp16 forward on tensor cores (WMMA 16x16x16, fp32 accumulate)
//           fused_backward_bf16.cu  and its backward (WMMA, dQ by fp32 atomics)
//
// This header is the raw-pointer API: every pointer is device memory, every tensor contiguous row-major:
//
//   q, k, v, out, dout, dq, dk, dv   [H, N_total, d]   heads first; clip b owns tokens
//                                                      [cu_seqlens[b], cu_seqlens[b+1]) of every head
//   lse, delta                       [H, N_total]      fp32 (natural-log logsumexp of each query row;
//                                                      delta = rowsum(dout * out), backward workspace)
//   cu_seqlens                       int32 [B + 1]     0 = cu[0] <= cu[1] <= ... <= cu[B] = N_total
//
// Token i attends to the tokens of its own clip only (a block-diagonal mask that is never built: no tile
// spans two clips). A dense batch is the case of equal lengths. Head dims 32, 64 and 128 are compiled;
// the autograd wrapper (fused_attention_op.h) zero-pads other head dims up to the next of these.
//
// Errors: a bad problem throws std::invalid_argument naming the value (head dim, sizes, null or
// misaligned pointers); a failed launch throws std::runtime_error naming the kernel and its grid.
// Debugging: with the environment variable GLANCE_CUDA_DEBUG=1 every launcher also checks that each
// pointer is device memory, copies cu_seqlens to the host and checks it against N_total and max_len,
// and synchronises after every kernel so an illegal access is reported by the kernel that made it.
//
// Everything runs on `stream` (the legacy default stream when null) and returns without waiting.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace glance::cuda::attention {

// The element type of q, k, v, out in the tensor-core forward.
enum class HalfType { BFloat16, Float16 };

// One packed attention problem (the sizes and the packing; the data pointers are passed separately).
struct Problem {
  int heads = 0;                        // H
  int64_t total_tokens = 0;             // N_total = cu_seqlens[B]
  int head_dim = 0;                     // d: 32, 64 or 128
  int batch = 0;                        // B, the number of clips
  int max_len = 0;                      // max_b (cu_seqlens[b+1] - cu_seqlens[b]): sets the grid
  const int32_t* cu_seqlens = nullptr;  // device, int32 [B + 1]
  float scale = 1.0f;                   // the softmax scale, usually 1 / sqrt(d)
  cudaStream_t stream = nullptr;
};

bool supported_head_dim(int head_dim);  // 32, 64 or 128

// Rung 3 (+5): out = softmax(q k^T * scale) v within each clip, lse = its row logsumexp (natural log).
void forward_fp32(const Problem& p, const float* q, const float* k, const float* v, float* out, float* lse);

// Rung 4 (+5): the gradients of sum(out * dout) with respect to q, k, v, from the forward pass's out and
// lse. `delta` is a workspace of H * N_total floats (it receives rowsum(dout * out)).
//   deterministic = false: one kernel over key tiles adds each tile's share of dQ with atomicAdd (dq is
//                          zeroed first): fastest, but the summation order changes from run to run.
//   deterministic = true:  the key-tile kernel writes dK, dV only; a second kernel over query tiles
//                          loops over the key tiles and sums dQ in a fixed order (7 matmuls per tile
//                          pair instead of 5; the same result on every run).
void backward_fp32(const Problem& p, const float* q, const float* k, const float* v, const float* out,
                   const float* lse, const float* dout, float* dq, float* dk, float* dv, float* delta,
                   bool deterministic = false);

// Rung 6 (+5): the forward pass for bf16 or fp16 q, k, v, out (void pointers to __nv_bfloat16 or
// __half) on tensor cores: S = Q K^T and O += P V in WMMA 16x16x16 with fp32 accumulators, the softmax
// in fp32, P rounded to the input type for the P V product. lse is fp32. Needs sm_80 or newer.
void forward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, void* out,
                  float* lse);

// Rung 6 backward: the gradients for bf16 or fp16 q, k, v, out, dout (dq, dk, dv of the same type) from
// forward_half's out and lse, on tensor cores (WMMA, fp32 accumulators; P and dS rounded to the input
// type before their products). Workspaces: delta (H * N_total floats) and dq_accum (H * N_total * d
// floats), where dQ is summed with atomicAdd before it is rounded into dq: not deterministic. dq may be null:
// then dQ is left in dq_accum only (fp32), as the mixed-precision autograd kernels want it.
void backward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, const void* out,
                   const float* lse, const void* dout, void* dq, void* dk, void* dv, float* delta,
                   float* dq_accum);

// Conversions for callers that hold fp32 data (the autograd kernels "fused_bf16" and "fused_fp16" in
// fused_attention_op.h): n elements of x rounded to bf16 / fp16 into y (round to nearest even; beyond fp16's
// largest value, 65504, to +-inf), and back to fp32 (exact). half_cast.cu.
void round_to_half(HalfType type, const float* x, void* y, int64_t n, cudaStream_t stream = nullptr);
void widen_from_half(HalfType type, const void* x, float* y, int64_t n, cudaStream_t stream = nullptr);

// The tile sizes each kernel uses for a head dim (for documentation, benchmarks and tests).
struct Tiles {
  int rows = 0;  // Br: query rows per CTA (forward, dQ kernel) or per inner step (dK/dV kernel)
  int cols = 0;  // Bc: key rows per inner step (forward, dQ kernel) or per CTA (dK/dV kernel)
  int threads = 0;
  int smem_bytes = 0;  // dynamic shared memory per CTA
};
enum class Kernel { ForwardFp32, BackwardKV, BackwardDQ, ForwardHalf, BackwardHalf };
Tiles tiles(Kernel kernel, int head_dim);

}  // namespace glance::cuda::attention
