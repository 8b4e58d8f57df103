// The fused CUDA attention kernels as an nn attention kernel: glance Tensors on a CUDA device in and out,
// with autograd. Registered under four names, so the attention layers pick them like "reference" and
// "tiled" (nn/attention/kernel.h):
//
//   "fused"                fp32 (rungs 3 and 4); dQ by atomics, FlashAttention-2's default
//   "fused_deterministic"  fp32; dQ by a second kernel, the same bits every run
//   "fused_bf16"           mixed precision: q, k, v rounded to bf16, the tensor-core kernels (rung 6), fp32 out
//   "fused_fp16"           the same in fp16 (train with loss scaling: nn/optim/loss_scaler.h)
//
//   q, k, v: [H, N_total, d] float32 on cuda:N, packed per `layout` -> [H, N_total, d] float32
//
// Forward: saves what the backward needs (the inputs as the kernels saw them, O and the row logsumexp,
// [H, N_total] fp32). Head dims other than 32, 64, 128 (up to 128) are zero-padded to the next of those:
// zero columns change no score, the padded output columns are 0 and are cut off again (at the cost of a
// copy of q, k, v, and of the output and its gradients). Above 128: an error.
//
// Mixed precision (bf16 / fp16): the tensors stay fp32 everywhere else in the model (parameters, the
// linear layers, LayerNorm, the optimizer: "fp32 master weights"); only the attention core runs in 16 bits.
// Forward: q, k, v are rounded (half_cast.cu), forward_half computes O (rounded) and lse (fp32), O is
// widened back to fp32. Backward: the incoming gradient is rounded, backward_half computes dK, dV (rounded)
// and dQ (summed in fp32; taken from that accumulator unrounded), and all three are widened. The rounding of
// the incoming gradient is where fp16 loses small gradients (below ~6e-8 they become 0): hence loss scaling.
// glance tensors have no 16-bit dtype, so the 16-bit copies are held as uint8 tensors of 2 bytes per element,
// which only these kernels read.
//
// Needs the CUDA Backend (glance_cuda) linked into the program: it allocates the tensors.
#pragma once
#include "nn/attention/kernel.h"
#include "nn/token_layout.h"
#include "tensor/tensor.h"

namespace glance::cuda {

enum class AttentionPrecision { Float32, BFloat16, Float16 };

struct FusedAttentionOptions {
  bool deterministic = false;  // dQ without atomics (a second backward kernel); fp32 only
  AttentionPrecision precision = AttentionPrecision::Float32;
};

// Throws std::invalid_argument naming the problem: q not on a CUDA device (naming its device), k or v
// elsewhere, shapes that differ or do not match the layout, a dtype other than float32, d > 128,
// deterministic with a 16-bit precision.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const nn::TokenLayout& layout,
                       double scale, FusedAttentionOptions options = {});

// Registers "fused", "fused_deterministic", "fused_bf16" and "fused_fp16" with nn::register_attention_kernel. Runs by itself at start-up
// whenever this library's object is linked in; calling it again is harmless.
void register_fused_attention();

}  // namespace glance::cuda
