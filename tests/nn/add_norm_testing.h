// One run of LayerNorm::add_and_norm for the fused-vs-unfused tests (tests/nn/test_fused_dispatch.cpp on the CPU,
// tests/cuda/test_fused_nn.cpp on the GPU): fresh leaves x and r from the given values, the loss
// sum(s * k_sum + n * k_norm) (each output weighed by its own tensor, so a gradient lost on either path shows),
// and back: {s, n, dx, dr, dweight, dbias}.
#pragma once
#include <vector>

#include "autograd/functions.h"
#include "nn/layer_norm.h"

namespace glance::testing {

inline std::vector<Tensor> add_and_norm_results(nn::LayerNorm& norm, const Tensor& x_value, const Tensor& r_value,
                                                const Tensor& k_sum, const Tensor& k_norm) {
  norm.zero_grad();
  Tensor x = ops::clone(x_value).set_requires_grad(), r = ops::clone(r_value).set_requires_grad();
  const auto [s, n] = norm.add_and_norm(x, r);
  sum(s * k_sum + n * k_norm).backward();
  return {s.detach(), n.detach(), x.grad(), r.grad(), ops::clone(norm.weight.grad()), ops::clone(norm.bias.grad())};
}

// The names of add_and_norm_results' entries, for failure messages.
inline const char* const kAddAndNormResultNames[] = {"sum", "norm", "x grad", "residual grad", "weight grad",
                                                    "bias grad"};

}  // namespace glance::testing
