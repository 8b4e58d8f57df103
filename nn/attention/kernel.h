// Attention kernels: the computation softmax(q k^T * scale) v inside each clip of a packed sequence.
//
//   q, k, v: [H, N_total, d]   (heads first; tokens packed clip after clip as the TokenLayout says)
//   result:  [H, N_total, d]   token i attends only to the tokens of its own clip
//
// Two differentiable functions compute it:
//   reference_attention  the plain per-clip loop of docs/09 (rung 1): materialised scores, on any device.
//   backend_attention    the device's own kernel, through the Backend (tensor/backend.h): on the CPU the tiled
//                        kernel (tensor/cpu/attention.cpp, rung 2), on CUDA the fused kernels
//                        (cuda/attention/attention_backend.cpp, rungs 3-6). Its backward rule is here.
// Every kernel must equal the reference to rounding: that is a test for every kernel.
//
// The attention layers take a kernel by name (the --attention-kernel of the glance program); attention_kernel
// below is the one place names map to these functions.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/token_layout.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace glance::nn {

using AttentionKernel =
    std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale)>;

// Rung 1, the reference: for each clip, materialise its [H, L, L] score matrix, softmax it, multiply by v.
// Memory O(H L^2) per clip. One autograd node for the whole pack, with the backward written out next to
// the forward (recording each clip's slices separately would make backward cost O(B * N_total)).
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale);

// The device's attention: Backend::attention_forward, recorded as one node whose backward is
// Backend::attention_backward (from q, k, v, the output and the rows' log-sum-exp).
Tensor backend_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const AttentionOptions& options);

// The kernels by name:
//   "reference"            reference_attention (any device)
//   "tiled"                backend_attention on a CPU tensor (the tiled kernel)
//   "fused"                backend_attention on a CUDA tensor (fp32; dQ summed with atomics)
//   "fused_deterministic"  the same with a deterministic backward (fp32)
//   "fused_bf16"           q, k, v rounded to bf16 for the tensor-core kernels, fp32 in and out
//   "fused_fp16"           the same in fp16 (train with loss scaling: nn/optim/loss_scaler.h)
// "tiled" refuses a tensor off the CPU and the "fused" ones a tensor off a CUDA device, naming the kernel to use.
AttentionKernel attention_kernel(const std::string& name);  // throws listing the known names
std::vector<std::string> attention_kernel_names();

}  // namespace glance::nn
