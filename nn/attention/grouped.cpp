#include "nn/attention/grouped.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "autograd/functions.h"
#include "tensor/ops.h"

namespace glance::nn {

const char* token_group_name(TokenGroup g) {
  switch (g) {
    case TokenGroup::Clip: return "clip";
    case TokenGroup::Frame: return "frame";
    case TokenGroup::Location: return "location";
  }
  return "?";
}

std::vector<int64_t> token_groups(const TokenLayout& layout, TokenGroup by) {
  const int64_t n = layout.total_tokens();
  std::vector<int64_t> group(static_cast<size_t>(n), 0);
  if (by == TokenGroup::Clip) return group;
  const int32_t* t = layout.t().data<int32_t>();
  const int32_t* h = layout.h().data<int32_t>();
  const int32_t* w = layout.w().data<int32_t>();
  for (int64_t i = 0; i < n; ++i) group[i] = by == TokenGroup::Frame ? t[i] : int64_t(h[i]) * layout.grid().w + w[i];
  return group;
}

Regrouping regroup(const TokenLayout& layout, const std::vector<int64_t>& group) {
  const int64_t n = layout.total_tokens();
  if (static_cast<int64_t>(group.size()) != n) {
    throw std::invalid_argument("regroup: " + std::to_string(group.size()) + " group ids for " + std::to_string(n) +
                                " tokens");
  }
  // Sort each clip's tokens by group id; stable, so a group keeps its tokens' order.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> counts;
  Regrouping r;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    auto first = order.begin() + layout.clip_begin(b), last = first + layout.clip_tokens(b);
    std::stable_sort(first, last, [&](int64_t a, int64_t c) { return group[a] < group[c]; });
    for (auto it = first; it != last; ++it) {
      if (it == first || group[*it] != group[*(it - 1)]) {
        counts.push_back(0);
        r.group_of_row.push_back(group[*it]);
      }
      ++counts.back();
    }
  }
  std::vector<int64_t> inverse(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) inverse[order[i]] = i;
  r.order = ops::from_vector(order);
  r.inverse = ops::from_vector(inverse);
  // The groups keep their tokens' real coordinates and run lengths, so a design can still read them.
  r.groups = TokenLayout(counts, ops::index_select(layout.t(), 0, r.order), ops::index_select(layout.h(), 0, r.order),
                         ops::index_select(layout.w(), 0, r.order), ops::index_select(layout.length(), 0, r.order),
                         layout.grid());
  return r;
}

Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Regrouping& r,
                         const AttentionKernel& kernel, double scale) {
  // [H, N, d] rows gathered into group order, attended per group, and scattered back.
  Tensor o = kernel(contiguous(index_select(q, 1, r.order)), contiguous(index_select(k, 1, r.order)),
                    contiguous(index_select(v, 1, r.order)), r.groups, scale);
  return contiguous(index_select(o, 1, r.inverse));
}

Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, TokenGroup by,
                         const AttentionKernel& kernel, double scale) {
  if (by == TokenGroup::Clip) return kernel(q, k, v, layout, scale);  // nothing to regroup
  return grouped_attention(q, k, v, regroup(layout, token_groups(layout, by)), kernel, scale);
}

}  // namespace glance::nn
