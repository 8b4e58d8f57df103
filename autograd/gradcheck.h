// gradcheck: compare the gradients autograd computes with central differences in float64.
//
// For a function f of some tensors, take a fixed random weight w of f's output shape and the scalar
// L = sum(f(x) * w). Autograd gives dL/dx for every input element; the check recomputes each one as
//     (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
// and compares. A random w (not all ones) catches rules that mix up elements, e.g. a missing transpose.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/functions.h"

namespace glance::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-6;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-5;
  uint64_t seed = 1234;  // for the random output weights
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // for a failure: which input, which element, both values
};

// `inputs` must be float64 leaves; those with requires_grad set are checked.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace glance::autograd
