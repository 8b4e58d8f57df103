#include "nn/attention/factorised_dot_product.h"

#include <cmath>
#include <stdexcept>

#include "nn/attention/grouped.h"
#include "nn/attention/heads.h"

namespace glance::nn {

FactorisedDotProductAttention::FactorisedDotProductAttention(int64_t d, int64_t h, bool qkv_bias,
                                                             const std::string& kernel, double drop)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0) {
  if (h <= 0 || h % 2 != 0) {
    throw std::invalid_argument("factorised_dot_product: needs an even number of heads (half attend over time, half "
                                "over space), got " + std::to_string(h) + " heads");
  }
  if (d % h != 0) {
    throw std::invalid_argument("factorised_dot_product: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
  set_kernel(kernel);
}

void FactorisedDotProductAttention::set_kernel(const std::string& name) { kernel_ = attention_kernel(name); }

Tensor FactorisedDotProductAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("factorised_dot_product: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  QKV h = project_qkv(*qkv, x, heads);  // each [H, N, d]
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t half = heads / 2;
  auto time_heads = [&](const Tensor& t) { return contiguous(narrow(t, 0, 0, half)); };      // [H/2, N, d]
  auto space_heads = [&](const Tensor& t) { return contiguous(narrow(t, 0, half, half)); };  // [H/2, N, d]
  Tensor over_time = grouped_attention(time_heads(h.q), time_heads(h.k), time_heads(h.v), layout,
                                       TokenGroup::Location, kernel_, scale);
  Tensor over_space = grouped_attention(space_heads(h.q), space_heads(h.k), space_heads(h.v), layout,
                                        TokenGroup::Frame, kernel_, scale);
  Tensor o = concat({over_time, over_space}, 0);                              // [H, N, d], heads in order
  return proj_drop->forward(proj->forward(merge_heads(o)));                    // [N, D]
}

std::shared_ptr<AttentionLayer> make_factorised_dot_product_attention(const AttentionConfig& c) {
  return std::make_shared<FactorisedDotProductAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop);
}

}  // namespace glance::nn
