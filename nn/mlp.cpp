#include "nn/mlp.h"

#include "nn/fused.h"

namespace glance::nn {

Mlp::Mlp(int64_t dim, int64_t hidden, double p) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden));
  act = register_module("act", std::make_shared<GELU>());
  drop = register_module("drop", std::make_shared<Dropout>(p));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim));
}

Tensor Mlp::forward(const Tensor& x) const {
  Tensor hidden;
  Backend* fused = fused_backend(x.device(), FusedOp::BiasGelu);
  if (fused && !act->tanh_approximation && fc1->bias.defined() && x.dtype() == fc1->weight.dtype()) {
    // One kernel for fc1's bias and the GELU (nn/fused.h): the pre-activation x W^T + b is never stored.
    hidden = fused_bias_gelu(*fused, linear(x, fc1->weight, Tensor()), fc1->bias);
  } else {
    hidden = act->forward(fc1->forward(x));
  }
  return drop->forward(fc2->forward(drop->forward(hidden)));
}

}  // namespace glance::nn
