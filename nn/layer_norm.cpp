#include "nn/layer_norm.h"

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
  return layer_norm(x, weight, bias, eps);
}

}  // namespace glance::nn
