#include "nn/attention/dilated.h"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include "autograd/node.h"
#include "nn/attention/heads.h"

namespace glance::nn {

int64_t dilated_head_offset(int64_t head, int64_t heads, int64_t rate) {
  if (rate < 1 || heads < 1 || head < 0 || head >= heads) {
    throw std::invalid_argument("dilated_head_offset: need 0 <= head < heads and rate >= 1, got head " +
                                std::to_string(head) + ", heads " + std::to_string(heads) + ", rate " +
                                std::to_string(rate));
  }
  // torchscale pads the heads to H' (a multiple of r) and splits them (r2 h): r contiguous groups of H'/r.
  const int64_t padded_heads = (heads + rate - 1) / rate * rate;
  return head / (padded_heads / rate);
}

AttentionWithLse attention_with_lse(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_bias,
                                    double scale, bool lse_needs_grad) {
  // scores [..., G, L, L]; a padded key has -inf added, so exp() gives it no weight.
  const Tensor scores = matmul(q, transpose(k, -1, -2)) * scale + key_bias;
  AttentionWithLse result;
  result.out = matmul(softmax(scores, -1), v);  // [..., G, L, d]
  std::unique_ptr<autograd::NoGradGuard> no_grad;
  if (!lse_needs_grad) no_grad = std::make_unique<autograd::NoGradGuard>();  // record nothing for the lse
  result.lse = logsumexp(scores, {-1});  // [..., G, L]; every row, padded or not, has a real key
  return result;
}

DilatedBranchOutput dilated_branch(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                                   const DilatedBranch& branch, double scale, bool lse_needs_grad) {
  if (branch.segment < 1 || branch.rate < 1) {
    throw std::invalid_argument("dilated_branch: segment length and rate must be >= 1, got w = " +
                                std::to_string(branch.segment) + ", r = " + std::to_string(branch.rate));
  }
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2), r = branch.rate;
  // The branch's groups: one per (clip, segment, head), holding the rows whose index in the segment is
  // the head's offset mod r. A row is named h * N + token: a row of q viewed as [H * N, d].
  std::vector<std::vector<int64_t>> groups;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
    const int64_t segment = std::min(branch.segment, n);
    for (int64_t start = 0; start < n; start += segment) {
      const int64_t length = std::min(segment, n - start);  // the last segment may be short: no padding
      for (int64_t h = 0; h < H; ++h) {
        const int64_t offset = dilated_head_offset(h, H, r);
        if (offset >= length) continue;  // no row of this segment has that offset
        std::vector<int64_t> rows;
        for (int64_t p = offset; p < length; p += r) rows.push_back(h * N + begin + start + p);
        groups.push_back(std::move(rows));
      }
    }
  }
  DilatedBranchOutput result;
  if (groups.empty()) {  // only when the layout has no tokens
    result.out = zeros_like(q);
    result.lse = full({H, N}, kAbsentLse, q.dtype(), q.device());
    return result;
  }
  // The groups padded to one length L, as a batch [G, L, d]: slot g * L + u holds row u of group g, or
  // H * N (a zero row) past the group's end; padded keys get -inf. place[row] = the row's slot, or G * L
  // (an extra row below: out 0, lse kAbsentLse) for a (token, head) the branch does not choose.
  const int64_t G = static_cast<int64_t>(groups.size());
  int64_t L = 0;
  for (const auto& g : groups) L = std::max(L, static_cast<int64_t>(g.size()));
  std::vector<int64_t> slot_row(static_cast<size_t>(G * L), H * N), place(static_cast<size_t>(H * N), G * L);
  std::vector<double> key_bias(static_cast<size_t>(G * L), -std::numeric_limits<double>::infinity());
  for (int64_t g = 0; g < G; ++g)
    for (size_t u = 0; u < groups[g].size(); ++u) {
      slot_row[g * L + u] = groups[g][u], place[groups[g][u]] = g * L + int64_t(u);
      key_bias[g * L + u] = 0.0;
    }
  const Tensor slots = ops::from_vector(slot_row), zero_row = zeros({1, d}, q.dtype(), q.device());
  auto padded = [&](const Tensor& x) {  // [H, N, d] -> [G, L, d]
    return reshape(index_select(concat({reshape(contiguous(x), {H * N, d}), zero_row}, 0), 0, slots), {G, L, d});
  };
  const Tensor bias = ops::to_device(ops::to_dtype(ops::from_vector(key_bias, {G, 1, L}), q.dtype()), q.device());
  const AttentionWithLse a = attention_with_lse(padded(q), padded(k), padded(v), bias, scale, lse_needs_grad);

  // Back to [H, N, ...].
  const Tensor rows = ops::from_vector(place);
  result.out = reshape(index_select(concat({reshape(a.out, {G * L, d}), zero_row}, 0), 0, rows), {H, N, d});
  result.lse = reshape(
      index_select(concat({reshape(a.lse, {G * L}), full({1}, kAbsentLse, q.dtype(), q.device())}, 0), 0, rows),
      {H, N});
  return result;
}

Tensor dilated_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const std::vector<DilatedBranch>& branches, double scale, bool detach_weights) {
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != layout.total_tokens()) {
    throw std::invalid_argument("dilated_attention: expected q, k, v of one shape [H, " +
                                std::to_string(layout.total_tokens()) + ", d], got " + shape_str(q.shape()) + ", " +
                                shape_str(k.shape()) + ", " + shape_str(v.shape()));
  }
  if (branches.empty()) throw std::invalid_argument("dilated_attention: needs at least one branch");
  std::vector<Tensor> outs, lses;
  for (const DilatedBranch& branch : branches) {
    DilatedBranchOutput o = dilated_branch(q, k, v, layout, branch, scale, !detach_weights);
    outs.push_back(o.out);
    lses.push_back(o.lse);
  }
  // alpha_i = exp(lse_i) / sum_j exp(lse_j) per (head, row): a softmax over the branch axis. With
  // detach_weights the lse were computed without recording, so alpha is a constant to autograd.
  const Tensor alpha = softmax(stack(lses, 0), 0);  // [branches, H, N]
  Tensor out = outs[0] * unsqueeze(select(alpha, 0, 0), -1);
  for (size_t i = 1; i < outs.size(); ++i) out = out + outs[i] * unsqueeze(select(alpha, 0, int64_t(i)), -1);
  return out;
}

DilatedAttention::DilatedAttention(int64_t d, int64_t h, bool qkv_bias, std::vector<DilatedBranch> br, bool detach,
                                   double drop)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), branches(std::move(br)), detach_weights(detach) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("DilatedAttention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  if (branches.empty()) throw std::invalid_argument("attention 'dilated': option 'branches' must be >= 1");
  for (size_t i = 0; i < branches.size(); ++i) {
    if (branches[i].segment < 1 || branches[i].rate < 1) {
      const std::string n = std::to_string(i);
      throw std::invalid_argument("attention 'dilated': options 'w" + n + "' and 'r" + n + "' must be >= 1, got " +
                                  std::to_string(branches[i].segment) + " and " + std::to_string(branches[i].rate));
    }
  }
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
}

Tensor DilatedAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("DilatedAttention: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  QKV h = project_qkv(*qkv, x, heads);  // each [H, N, d]
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  Tensor o = dilated_attention(h.q, h.k, h.v, layout, branches, scale, detach_weights);  // [H, N, d]
  return proj_drop->forward(proj->forward(merge_heads(o)));                                         // [N, D]
}

namespace {
// An option that must be a whole number >= `least`.
int64_t whole_option(const AttentionConfig& c, const std::string& name, double fallback, int64_t least) {
  const double value = c.option(name, fallback);
  if (value != std::floor(value) || value < double(least)) {
    throw std::invalid_argument("attention 'dilated': option '" + name + "' must be a whole number >= " +
                                std::to_string(least) + ", got " + std::to_string(value));
  }
  return static_cast<int64_t>(value);
}
}  // namespace

std::shared_ptr<AttentionLayer> make_dilated_attention(const AttentionConfig& c) {
  const int64_t count = whole_option(c, "branches", 3, 1);
  std::vector<DilatedBranch> branches;
  for (int64_t i = 0; i < count; ++i) {
    // Defaults (16, 1), (32, 2), (128, 4), then w = 256, 512, ... and r = 2^i.
    const double w = i == 0 ? 16 : i == 1 ? 32 : 128.0 * std::pow(2.0, double(i - 2));
    const double r = std::pow(2.0, double(i));
    const std::string index = std::to_string(i);
    DilatedBranch b;
    b.segment = whole_option(c, std::string("w").append(index), w, 1);
    b.rate = whole_option(c, std::string("r").append(index), r, 1);
    branches.push_back(b);
  }
  const int64_t detach = whole_option(c, "detach_weights", 1, 0);
  if (detach > 1) throw std::invalid_argument("attention 'dilated': option 'detach_weights' must be 0 or 1");
  return std::make_shared<DilatedAttention>(c.dim, c.heads, c.qkv_bias, branches, detach == 1, c.proj_drop);
}

}  // namespace glance::nn
