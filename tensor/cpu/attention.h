// Rung 2 of the attention ladder, the CPU backend's attention (CpuBackend::attention_forward / backward):
// FlashAttention's algorithm on the CPU. Same result as the plain reference (nn::reference_attention,
// nn/attention/kernel.h), without ever holding a clip's whole [L, L] score matrix:
//
//   forward, per (clip, head), per block of Br query rows:
//     m = -inf, l = 0, acc = 0                       running row max, row sum, unnormalised output
//     for each block of Bc key rows:
//       S = Q_i K_j^T * scale                         [Br, Bc]
//       m' = max(m, rowmax S);  P = exp(S - m')       the online softmax
//       l = l * exp(m - m') + rowsum P;  acc = acc * exp(m - m') + P V_j
//     O_i = acc / l;  LSE_i = m + log l               saved for the backward pass (O(N) memory)
//   backward (FlashAttention-2), per (clip, head): D = rowsum(dO * O); for each key block j and query
//   block i: P = exp(Q_i K_j^T * scale - LSE_i) (recomputed), dV_j += P^T dO_i, dP = dO_i V_j^T,
//   dS = P * (dP - D_i), dQ_i += dS K_j * scale, dK_j += dS^T Q_i * scale.
//
// Extra memory: O(N) (the logsumexp) instead of O(H L^2). The forward pass runs (clip, head, query block)
// tasks in parallel, the backward (clip, head) tasks; inside a task the block products go through the
// packed GEMM on the calling thread, and the row operations (max, exp, sums) are written in 16 lanes so
// they become SIMD code.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/backend.h"

namespace glance::cpu {

// The CPU backend's attention takes the tiled kernel when the pack's longest clip has at least this many
// tokens, and the materialised one (below) otherwise. With the blocks below, measured on one thread
// (bench_attention --threads 1, docs/performance/2026-12-08-cpu-vs-pytorch2.md), the tiled kernel beats the
// materialised scores from a few hundred tokens per clip (an RLT pack of ~300: 14.8 vs 16.0 ms fwd+bwd; 512:
// 5.1 vs 6.2 ms), since the materialised kernel streams its [H, L, L] scores through memory several times per
// step while the tiled one keeps its blocks in L2. Short clips (the demo's 128 tokens, RLT's packs of tens)
// stay materialised: there the batched products of equal-length clips win.
constexpr int64_t kTiledFromTokens = 256;

// Block sizes. Bigger blocks amortise each GEMM call's packing (every call packs both of its operands, so
// packing per FLOP falls with the block's smaller side); the score blocks must still sit in L2 (Br x Bc
// floats: 240 KB for 256 x 240). Multiples of the micro-kernel's 48 columns (AVX-512) leave no edge tiles in
// the products whose columns are keys. Measured on one thread (bench_attention --blocks): 256 x 240 / 192 is
// 15-21% faster than 64 x 256 / 128 at N = 1568 and 2048, d = 64 and 128, with a flat optimum around it.
// Tests use tiny blocks to cross many block edges cheaply.
struct TiledBlocks {
  int64_t rows = 256;      // Br: query rows per block (forward)
  int64_t cols = 240;      // Bc: key rows per block (forward)
  int64_t backward = 192;  // Br = Bc in the backward pass
};

// q, k, v: contiguous [H, N_total, d] float32 or float64, clip b owning tokens [offsets[b], offsets[b + 1])
// -> out [H, N_total, d], saving the rows' log-sum-exp lse [H, N_total] (q's dtype). No autograd: the backend's
// contract.
AttentionForwardResult tiled_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                               const std::vector<int64_t>& offsets, double scale,
                                               TiledBlocks blocks = {});
// dout: [H, N_total, d] (any strides) -> dq, dk, dv, from the forward's inputs and result.
AttentionGradients tiled_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                            const AttentionForwardResult& forward,
                                            const std::vector<int64_t>& offsets, double scale, TiledBlocks blocks = {});

// The short-clip kernel (attention_materialised.cpp): per run of equal-length clips, S = q k^T * scale,
// P = softmax(S), out = P v, the runs spread over the threads; saves P of each run for the backward. Same
// shapes and dtypes as above.
AttentionForwardResult materialised_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                      const std::vector<int64_t>& offsets, double scale);
AttentionGradients materialised_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                   const Tensor& v, const AttentionForwardResult& forward,
                                                   const std::vector<int64_t>& offsets, double scale);

// Throws std::invalid_argument unless q, k, v are contiguous CPU tensors of one shape [H, offsets.back(), d]
// and one dtype, float32 or float64.
void check_attention_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& offsets);

}  // namespace glance::cpu
