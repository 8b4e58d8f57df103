// LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias, per row.
#pragma once
#include "nn/module.h"

namespace glance::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);  // weight = 1, bias = 0
  Tensor forward(const Tensor& x) const;  // x [..., dim]

  int64_t dim;
  double eps;
  Tensor weight, bias;  // [dim] each, undefined when not affine
};

}  // namespace glance::nn
