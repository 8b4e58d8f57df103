// Rung 2 of the attention ladder: FlashAttention's algorithm on the CPU. Same result as
// reference_attention (kernel.h), without ever holding a clip's whole [L, L] score matrix:
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
#include "nn/attention/kernel.h"

namespace glance::nn {

// Block sizes. Bigger blocks amortise each GEMM call's packing; smaller ones keep the score block in L2
// (Br x Bc floats: 64 KB for 64 x 256). Tests use tiny blocks to cross many block edges cheaply.
struct TiledBlocks {
  int64_t rows = 64;       // Br: query rows per block (forward)
  int64_t cols = 256;      // Bc: key rows per block (forward)
  int64_t backward = 128;  // Br = Bc in the backward pass
};

// q, k, v: [H, N_total, d] float32 or float64 -> [H, N_total, d]. Registered as the kernel "tiled".
Tensor tiled_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale,
                       TiledBlocks blocks = {});

}  // namespace glance::nn
