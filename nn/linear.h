// Linear: y = x W^T + b, with W [out, in] and b [out] as in PyTorch (so weights load unchanged).
#pragma once
#include "nn/module.h"

namespace glance::nn {

class Linear : public Module {
 public:
  // Initialised like PyTorch's nn.Linear: W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) const;  // x [..., in] -> [..., out]

  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined when built without bias
};

// The same map as a function, for layers that hold their own weights.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace glance::nn
