// The CUDA fused kernels (cuda/fused.h) offered to nn (nn/fused.h): nn::cross_entropy, nn::Mlp,
// nn::LayerNorm::add_and_norm (TransformerBlock) and nn::AdamW use them for tensors on a CUDA device. Part of
// glance_cuda_nn (it needs nn, which glance_cuda sits below; in its own folder so that glance_cuda's glob of
// cuda/*.cpp does not take it).
#include "cuda/fused.h"
#include "nn/fused.h"

namespace glance::cuda {

namespace {

nn::FusedKernels cuda_fused_kernels() {
  nn::FusedKernels k;
  k.softmax_cross_entropy = [](const Tensor& logits, const Tensor& labels, double smoothing) {
    SoftmaxCrossEntropyResult r = softmax_cross_entropy(logits, labels, smoothing);
    return std::make_pair(r.loss, r.dlogits);
  };
  k.bias_gelu = [](const Tensor& x, const Tensor& bias) { return bias_gelu(x, bias); };
  k.bias_gelu_backward = [](const Tensor& dy, const Tensor& x, const Tensor& bias) {
    return bias_gelu_backward(dy, x, bias);
  };
  k.adamw_step = [](const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const nn::AdamWHyper& h) {
    adamw_step(p, g, m, v, AdamWParams{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step});
  };
  k.residual_layer_norm = [](const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias,
                             double eps) {
    ResidualLayerNormResult r = residual_layer_norm(x, residual, weight, bias, eps);
    return nn::ResidualLayerNormValues{r.sum, r.out, r.mean, r.rstd};
  };
  return k;
}

// Registered at start-up whenever this object file is part of the program (glance_cuda_nn is an OBJECT library).
[[maybe_unused]] const bool g_registered = (nn::register_fused_kernels(DeviceType::CUDA, cuda_fused_kernels()), true);

}  // namespace

}  // namespace glance::cuda
