// The transformer's feed-forward block: Linear -> GELU -> Dropout -> Linear -> Dropout (timm's Mlp,
// with the same parameter names: fc1, fc2).
#pragma once
#include <memory>

#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

class GELU : public Module {
 public:
  explicit GELU(bool tanh_approximation = false) : tanh_approximation(tanh_approximation) {}
  // autograd/functions/elementwise.cpp: each one's backward rule, and where its kernels are.
  Tensor forward(const Tensor& x) const { return tanh_approximation ? gelu_tanh(x) : gelu(x); }
  bool tanh_approximation;
};

class Mlp : public Module {
 public:
  Mlp(int64_t dim, int64_t hidden, double drop = 0.0);
  Tensor forward(const Tensor& x) const;  // [..., dim] -> [..., dim]

  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<GELU> act;
  std::shared_ptr<Dropout> drop;
};

}  // namespace glance::nn
