// The Backend's fused ops (tensor/backend.h) in nn: one pass over memory where the composition of primitives
// makes several. nn calls them when the tensors live on a device whose backend does them faster
// (Backend::has_fused), and otherwise (and when fusion is off) composes the same thing from differentiable
// functions, which stays the reference.
//
//   used by                      Backend method          replaces
//   nn::cross_entropy            softmax_cross_entropy   log_softmax, gather, mean (and the backward's softmax - onehot)
//   nn::Mlp (exact GELU)         bias_gelu (+ backward)  fc1's bias add, then GELU: the x + b tensor never exists
//   nn::LayerNorm::add_and_norm  residual_layer_norm     the residual add, then LayerNorm: the sum is written once
//     (TransformerBlock's second "add & norm")           and not read back by a second kernel
//   nn::AdamW::step              adamw_step              ~10 elementwise passes over p, g, m, v
//
// The CUDA backend does all four (cuda/fused.cu), the CPU backend too (tensor/cpu/fused.cpp).
// tests/nn/test_fused_dispatch.cpp installs a CPU backend with float64 loop implementations to check this wiring
// (autograd included) without a GPU; tests/cuda/test_fused_nn.cpp compares the CUDA kernels with the unfused
// path on the GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace glance::nn {

// The backend of `device` when fusion is on and that backend does `op` faster than nn's own composition
// (Backend::has_fused), else nullptr: the caller then composes the op from differentiable functions.
Backend* fused_backend(Device device, FusedOp op);

// On by default. Off: every caller takes the unfused path (for tests and benchmarks that compare the two).
void set_fusion_enabled(bool on);
bool fusion_enabled();

// RAII: fusion on or off while alive, restored after.
class FusionGuard {
 public:
  explicit FusionGuard(bool on) : before_(fusion_enabled()) { set_fusion_enabled(on); }
  ~FusionGuard() { set_fusion_enabled(before_); }
  FusionGuard(const FusionGuard&) = delete;
  FusionGuard& operator=(const FusionGuard&) = delete;

 private:
  bool before_;
};

// The fused steps that sit in the autograd graph, each its forward with its backward rule (AdamW runs outside
// the graph and calls Backend::adamw_step directly):
// gelu(x + bias) recorded as one node, backward through Backend::bias_gelu_backward.
Tensor fused_bias_gelu(Backend& backend, const Tensor& x, const Tensor& bias);
// Cross-entropy averaged over rows (Reduction::Mean) as one node whose backward scales the saved dlogits.
Tensor fused_cross_entropy_mean(Backend& backend, const Tensor& logits, const Tensor& labels, double label_smoothing);
// {x + residual, layer_norm(x + residual, weight, bias, eps)} from one residual_layer_norm call, recorded as the
// two nodes the composition records (an add, whose backward passes the gradient to both inputs, and a
// layer_norm, whose backward is autograd's own), so gradients flow exactly as without fusion.
std::pair<Tensor, Tensor> fused_residual_layer_norm(Backend& backend, const Tensor& x,
                                                    const Tensor& residual, const Tensor& weight,
                                                    const Tensor& bias, double eps);

}  // namespace glance::nn
