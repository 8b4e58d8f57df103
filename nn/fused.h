// Fused kernels that a backend offers to nn: one pass over memory where the composition of primitives makes
// several. nn calls them when the tensors live on a device that registered them, and otherwise (and when
// disabled) computes the same thing from primitives, which stays the reference.
//
//   used by                      fused kernel            replaces
//   nn::cross_entropy            softmax_cross_entropy   log_softmax, gather, mean (and the backward's softmax - onehot)
//   nn::Mlp (exact GELU)         bias_gelu (+ backward)  fc1's bias add, then GELU: the x + b tensor never exists
//   nn::LayerNorm::add_and_norm  residual_layer_norm     the residual add, then LayerNorm: the sum is written once
//     (TransformerBlock's second "add & norm")           and not read back by a second kernel
//   nn::AdamW::step              adamw_step              ~10 elementwise passes over p, g, m, v
//
// The CUDA backend registers its kernels (cuda/nn/fused_nn.cpp, from cuda/fused.h); the CPU registers none, so CPU
// training is unchanged. tests/nn/test_fused_dispatch.cpp registers float64 loop implementations for the CPU to
// check this wiring (autograd included) without a GPU; tests/cuda/test_fused_nn.cpp compares the CUDA kernels
// with the unfused path on the GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>

#include "tensor/tensor.h"

namespace glance::nn {

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // counted from 1, for the bias corrections
};

struct ResidualLayerNormValues {
  Tensor sum, out, mean, rstd;  // x + residual; LN of it; its rows' mean and 1 / sqrt(var + eps)
};

struct FusedKernels {
  // logits [N, C], labels int64 or int32 [N], smoothing s -> {loss [N], dlogits [N, C]}; a row whose label is
  // outside [0, C) gets a NaN loss and NaN gradients (the labels may arrive unchecked: nn/loss.h):
  // loss_i = (1 - s)(-log p_i[y_i]) - s mean_j log p_i[j]; dlogits_i = d loss_i / d logits_i. No autograd.
  std::function<std::pair<Tensor, Tensor>(const Tensor& logits, const Tensor& labels, double smoothing)>
      softmax_cross_entropy;
  // gelu_erf(x + bias) for x [..., C], bias [C]; and d/dx of it times dy (the bias gradient is its row sum).
  std::function<Tensor(const Tensor& x, const Tensor& bias)> bias_gelu;
  std::function<Tensor(const Tensor& dy, const Tensor& x, const Tensor& bias)> bias_gelu_backward;
  // One AdamW step in place on contiguous p, g, m, v of one shape (the update of nn/optim/adamw.cpp).
  std::function<void(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamWHyper& h)>
      adamw_step;
  // s = x + residual (both [..., C], one shape and dtype) and out = LN(s) * weight + bias over the last axis
  // (weight, bias [C] or undefined), with the row statistics mean and rstd ([rows]) that layer_norm_backward
  // takes. No autograd.
  std::function<ResidualLayerNormValues(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                        const Tensor& bias, double eps)>
      residual_layer_norm;
};

// Registers (replacing) the fused kernels of a device type; an empty FusedKernels removes them.
void register_fused_kernels(DeviceType type, FusedKernels kernels);
// The kernels for `device`, or nullptr when it has none or fusion is disabled. An unset member means "not
// offered": callers check the member they need.
const FusedKernels* fused_kernels(Device device);

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

// The fused steps that sit in the autograd graph (AdamW runs outside it):
// gelu(x + bias) recorded as one node, backward through bias_gelu_backward; requires kernels.bias_gelu.
Tensor fused_bias_gelu(const FusedKernels& kernels, const Tensor& x, const Tensor& bias);
// Cross-entropy averaged over rows (Reduction::Mean) as one node whose backward scales the saved dlogits.
Tensor fused_cross_entropy_mean(const FusedKernels& kernels, const Tensor& logits, const Tensor& labels,
                                double label_smoothing);
// {x + residual, layer_norm(x + residual, weight, bias, eps)} from one residual_layer_norm call, recorded as the
// two nodes the composition records (an add, whose backward passes the gradient to both inputs, and a
// layer_norm, whose backward is autograd's own), so gradients flow exactly as without fusion. Requires
// kernels.residual_layer_norm.
std::pair<Tensor, Tensor> fused_residual_layer_norm(const FusedKernels& kernels, const Tensor& x,
                                                    const Tensor& residual, const Tensor& weight,
                                                    const Tensor& bias, double eps);

}  // namespace glance::nn
