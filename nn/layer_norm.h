// LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias, per row.
#pragma once
#include <utility>

#include "nn/module.h"

namespace glance::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);  // weight = 1, bias = 0
  Tensor forward(const Tensor& x) const;  // x [..., dim]

  // A transformer block's "add & norm": {x + residual, forward(x + residual)}, x and residual of one shape
  // [..., dim]. Where the tensors' device registered the fused residual_layer_norm kernel (nn/fused.h: the
  // CUDA backend does), both come from one kernel, which reads x and residual once and writes the sum once;
  // elsewhere, the add and then forward(). The same values and gradients either way.
  std::pair<Tensor, Tensor> add_and_norm(const Tensor& x, const Tensor& residual) const;

  int64_t dim;
  double eps;
  Tensor weight, bias;  // [dim] each, undefined when not affine
};

}  // namespace glance::nn
