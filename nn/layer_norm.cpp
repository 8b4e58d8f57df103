#include "nn/layer_norm.h"

#include "nn/fused.h"

namespace glance::nn {

LayerNorm::LayerNorm(int64_t d, double e, bool affine) : dim(d), eps(e) {
  if (affine) {
    weight = register_parameter("weight", ops::ones({d}));
    bias = register_parameter("bias", ops::zeros({d}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  if (x.dim() == 0 || x.size(-1) != dim) {
    throw std::invalid_argument("LayerNorm: expected input [..., " + std::to_string(dim) + "], got " +
                                shape_str(x.shape()));
  }
  return layer_norm(x, weight, bias, eps);  // autograd/functions/linalg.cpp: its backward, and its kernels
}

std::pair<Tensor, Tensor> LayerNorm::add_and_norm(const Tensor& x, const Tensor& residual) const {
  Backend* fused = fused_backend(x.device(), FusedOp::ResidualLayerNorm);
  const bool fusable = fused && x.shape() == residual.shape() &&
                       x.dtype() == residual.dtype() && x.device() == residual.device() && is_floating(x.dtype()) &&
                       x.dim() > 0 && x.size(-1) == dim && (!weight.defined() || weight.dtype() == x.dtype());
  if (fusable) return fused_residual_layer_norm(*fused, x, residual, weight, bias, eps);
  Tensor sum = x + residual;
  return {sum, forward(sum)};
}

}  // namespace glance::nn
