// The fused CUDA attention kernels as an nn attention kernel: glance Tensors on a CUDA device in and out,
// with autograd. Registered as "fused" (dQ by atomics, FlashAttention-2's default) and
// "fused_deterministic" (dQ by a second kernel, the same bits every run), so the attention layers pick
// them by name like "reference" and "tiled" (nn/attention/kernel.h).
//
//   q, k, v: [H, N_total, d] float32 on cuda:N, packed per `layout` -> [H, N_total, d]
//
// Forward: forward_fp32 (rung 3); saves O and the row logsumexp ([H, N_total] fp32) for the backward,
// which calls backward_fp32 (rung 4). Head dims other than 32, 64, 128 (up to 128) are zero-padded to
// the next of those: zero columns change no score, the padded output columns are 0 and are cut off again
// (at the cost of a copy of q, k, v, and of the output and its gradients). Above 128: an error.
// float32 only: glance tensors have no bf16/fp16 dtype yet; the tensor-core kernels (rung 6) are reachable
// through the raw-pointer API, cuda/attention/fused_attention.h.
//
// Needs the CUDA Backend (glance_cuda) linked into the program: it allocates the tensors.
#pragma once
#include "nn/attention/kernel.h"
#include "nn/token_layout.h"
#include "tensor/tensor.h"

namespace glance::cuda {

struct FusedAttentionOptions {
  bool deterministic = false;  // dQ without atomics (a second backward kernel)
};

// Throws std::invalid_argument naming the problem: q not on a CUDA device (naming its device), k or v
// elsewhere, shapes that differ or do not match the layout, a dtype other than float32, d > 128.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const nn::TokenLayout& layout,
                       double scale, FusedAttentionOptions options = {});

// Registers "fused" and "fused_deterministic" with nn::register_attention_kernel. Runs by itself at start-up
// whenever this library's object is linked in; calling it again is harmless.
void register_fused_attention();

}  // namespace glance::cuda
