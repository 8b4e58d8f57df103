#include "nn/attention/local_window.h"

#include <cmath>
#include <stdexcept>

#include "nn/attention/grouped.h"
#include "nn/attention/heads.h"

namespace glance::nn {

LocalWindowAttention::LocalWindowAttention(const AttentionConfig& c)
    : dim(c.dim), heads(c.heads), window(static_cast<int64_t>(c.option("window", 2))), kernel(c.kernel) {
  if (window < 1) throw std::invalid_argument("local: option window = " + std::to_string(window) + " must be >= 1");
  qkv = register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, c.qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(dim, dim));
}

Tensor LocalWindowAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  // 1. Which window each token is in: [N] group ids, read from the layout's coordinates.
  const int64_t windows_per_row = (layout.grid().w + window - 1) / window;
  const int32_t* h = layout.h().data<int32_t>();
  const int32_t* w = layout.w().data<int32_t>();
  std::vector<int64_t> group(static_cast<size_t>(layout.total_tokens()));
  for (size_t i = 0; i < group.size(); ++i) group[i] = (h[i] / window) * windows_per_row + w[i] / window;

  // 2. Ordinary multi-head attention, restricted to (clip, window).
  QKV t = project_qkv(*qkv, x, heads);  // each [H, N, d]
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim / heads));
  Tensor o = grouped_attention(t.q, t.k, t.v, regroup(layout, group), attention_kernel(kernel), scale);
  return proj->forward(merge_heads(o));  // [N, D]
}

std::shared_ptr<AttentionLayer> make_local_window_attention(const AttentionConfig& config) {
  return std::make_shared<LocalWindowAttention>(config);
}

}  // namespace glance::nn
