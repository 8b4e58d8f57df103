// Attention kernels: the computation softmax(q k^T * scale) v inside each clip of a packed sequence.
//
//   q, k, v: [H, N_total, d]   (heads first; tokens packed clip after clip as the TokenLayout says)
//   result:  [H, N_total, d]   token i attends only to the tokens of its own clip
//
// The attention layer (nn/attention/multi_head.h) takes a kernel by name, so faster kernels (the tiled
// CPU kernel, the fused CUDA kernels) slot in without touching the layer. Each kernel must equal the
// reference below to rounding: that is a test for every kernel.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/token_layout.h"
#include "tensor/tensor.h"

namespace glance::nn {

using AttentionKernel =
    std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale)>;

// The reference: for each clip, materialise its [H, L, L] score matrix, softmax it, multiply by v.
// Memory O(H L^2) per clip. One autograd node for the whole pack, with the backward written out next to
// the forward (recording each clip's slices separately would make backward cost O(B * N_total)).
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale);

// The kernel registry: "reference" is built in; others register themselves by name.
void register_attention_kernel(const std::string& name, AttentionKernel kernel);
AttentionKernel attention_kernel(const std::string& name);  // throws listing the known names
std::vector<std::string> attention_kernel_names();

}  // namespace glance::nn
