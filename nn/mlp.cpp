#include "nn/mlp.h"

namespace glance::nn {

Mlp::Mlp(int64_t dim, int64_t hidden, double p) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden));
  act = register_module("act", std::make_shared<GELU>());
  drop = register_module("drop", std::make_shared<Dropout>(p));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim));
}

Tensor Mlp::forward(const Tensor& x) const {
  return drop->forward(fc2->forward(drop->forward(act->forward(fc1->forward(x)))));
}

}  // namespace glance::nn
