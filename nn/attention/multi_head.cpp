#include "nn/attention/multi_head.h"

#include <cmath>
#include <stdexcept>

namespace glance::nn {

MultiHeadSelfAttention::MultiHeadSelfAttention(int64_t d, int64_t h, bool qkv_bias, const std::string& kernel,
                                               double drop)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("MultiHeadSelfAttention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
  set_kernel(kernel);
}

void MultiHeadSelfAttention::set_kernel(const std::string& name) {
  kernel_ = attention_kernel(name);
  kernel_name_ = name;
}

Tensor MultiHeadSelfAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("MultiHeadSelfAttention: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  int64_t n = x.size(0);
  // [N, 3D] -> [N, 3, H, d] -> [3, H, N, d]; contiguous so each of q, k, v is a dense [H, N, d] block.
  Tensor packed = contiguous(permute(reshape(qkv->forward(x), {n, 3, heads, head_dim}), {1, 2, 0, 3}));
  Tensor q = select(packed, 0, 0), k = select(packed, 0, 1), v = select(packed, 0, 2);
  Tensor o = kernel_(q, k, v, layout, 1.0 / std::sqrt(static_cast<double>(head_dim)));  // [H, N, d]
  Tensor merged = reshape(permute(o, {1, 0, 2}), {n, dim});  // heads side by side again: [N, D]
  return proj_drop->forward(proj->forward(merged));
}

}  // namespace glance::nn
