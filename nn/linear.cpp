#include "nn/linear.h"

#include <cmath>

#include "nn/init.h"

namespace glance::nn {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  // transpose is a view: the GEMM reads W [out, in] as W^T [in, out] through its strides, no copy.
  Tensor y = matmul(x, transpose(weight, 0, 1));
  return bias.defined() ? y + bias : y;
}

Linear::Linear(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", ops::empty({out, in}));
  init::uniform_(weight, -bound, bound);
  if (with_bias) {
    bias = register_parameter("bias", ops::empty({out}));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) const {
  if (x.dim() == 0 || x.size(-1) != in_features) {
    throw std::invalid_argument("Linear: expected input [..., " + std::to_string(in_features) + "], got " +
                                shape_str(x.shape()));
  }
  return linear(x, weight, bias);
}

}  // namespace glance::nn
