#include "nn/attention/multi_head.h"

#include <cmath>
#include <stdexcept>

#include "nn/attention/heads.h"

namespace glance::nn {

MultiHeadSelfAttention::MultiHeadSelfAttention(int64_t d, int64_t h, bool qkv_bias, const std::string& kernel,
                                               double drop, TokenGroup g)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), group(g) {
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
  QKV h = project_qkv(*qkv, x, heads);  // each [H, N, d]
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  Tensor o = grouped_attention(h.q, h.k, h.v, layout, group, kernel_, scale);  // [H, N, d]
  return proj_drop->forward(proj->forward(merge_heads(o)));                    // heads side by side: [N, D]
}

std::shared_ptr<AttentionLayer> make_joint_attention(const AttentionConfig& c) {
  return std::make_shared<MultiHeadSelfAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop, TokenGroup::Clip);
}

std::shared_ptr<AttentionLayer> make_space_only_attention(const AttentionConfig& c) {
  return std::make_shared<MultiHeadSelfAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop, TokenGroup::Frame);
}

}  // namespace glance::nn
