#include "nn/attention/trajectory.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/attention/heads.h"

namespace glance::nn {

FrameKeys frame_keys(const TokenLayout& layout) {
  FrameKeys f;
  const int64_t T = layout.grid().t, n = layout.total_tokens();
  f.frames = T;
  const int32_t* t = layout.t().data<int32_t>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::vector<bool> empty(static_cast<size_t>(n * T), false);
  std::vector<int64_t> own(static_cast<size_t>(n));
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t first = layout.clip_begin(b), count = layout.clip_tokens(b);
    // Counting sort of the clip's tokens by frame (stable: a frame keeps its tokens' raster order).
    std::vector<FrameKeys::Block> blocks(static_cast<size_t>(T));
    for (int64_t i = first; i < first + count; ++i) ++blocks[t[i]].count;
    for (int64_t s = 1; s < T; ++s) blocks[s].begin = blocks[s - 1].begin + blocks[s - 1].count;
    std::vector<int64_t> next(static_cast<size_t>(T));
    for (int64_t s = 0; s < T; ++s) next[s] = blocks[s].begin;
    for (int64_t i = first; i < first + count; ++i) {
      const int64_t row = first + next[t[i]]++;
      order[row] = i;
      if (row != i) f.already_sorted = false;
    }
    for (int64_t i = first; i < first + count; ++i) {
      own[i] = i * T + t[i];
      for (int64_t s = 0; s < T; ++s) {
        if (blocks[s].count == 0) empty[i * T + s] = true, f.any_empty = true;
      }
    }
    f.blocks.push_back(std::move(blocks));
  }
  f.order = ops::from_vector(order);
  f.empty = ops::from_vector(empty, Shape{n, T});
  f.own_frame = ops::from_vector(own);
  return f;
}

namespace {

void check_heads_tensor(const Tensor& x, const char* name, const Tensor& q, int64_t n, const char* who) {
  if (x.dim() != 3 || x.size(1) != n || (q.defined() && x.shape() != q.shape())) {
    throw std::invalid_argument(std::string(who) + ": expected " + name + " [H, " + std::to_string(n) +
                                ", d] (like q) for this layout, got " + shape_str(x.shape()));
  }
}

}  // namespace

Tensor trajectory_tokens(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const FrameKeys& frames, double scale) {
  const int64_t n = layout.total_tokens();
  check_heads_tensor(q, "q", Tensor(), n, "trajectory_tokens");
  check_heads_tensor(k, "k", q, n, "trajectory_tokens");
  check_heads_tensor(v, "v", q, n, "trajectory_tokens");
  const int64_t H = q.size(0), d = q.size(2), T = frames.frames;

  // Keys and values sorted by (clip, frame), so each frame's keys are one block of rows.
  const Tensor keys = frames.already_sorted ? k : index_select(k, 1, frames.order);
  const Tensor values = frames.already_sorted ? v : index_select(v, 1, frames.order);
  const Tensor q_scaled = q * scale;

  std::vector<Tensor> clips;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
    if (L == 0) continue;
    const Tensor kb = narrow(keys, 1, first, L), vb = narrow(values, 1, first, L);
    // The clip's scores, as in joint attention: [H, L queries, L keys (frame-sorted)].
    const Tensor scores = matmul(narrow(q_scaled, 1, first, L), transpose(kb, 1, 2));
    std::vector<Tensor> per_frame;  // T' tensors [H, L, d]
    for (int64_t s = 0; s < T; ++s) {
      const FrameKeys::Block block = frames.blocks[b][s];
      if (block.count == 0) {  // the clip kept no token of this frame: no distribution (masked in stage 2)
        per_frame.push_back(zeros({H, L, d}, q.dtype()));
        continue;
      }
      // Softmax over this frame's keys only, then average their values: [H, L, d].
      const Tensor attn = softmax(narrow(scores, 2, block.begin, block.count), -1);
      per_frame.push_back(matmul(attn, narrow(vb, 1, block.begin, block.count)));
    }
    clips.push_back(stack(per_frame, 2));  // [H, L, T', d]
  }
  if (clips.empty()) return zeros({H, 0, T, d}, q.dtype(), q.device());
  return concat(clips, 1);  // [H, N, T', d]
}

TrajectoryAttention::TrajectoryAttention(int64_t d, int64_t h, bool qkv_bias, double drop, bool original)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), original_code(original) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("TrajectoryAttention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj_q = register_module("proj_q", std::make_shared<Linear>(d, d, qkv_bias));
  proj_kv = register_module("proj_kv", std::make_shared<Linear>(d, 2 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
}

Tensor TrajectoryAttention::trajectories(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                                         const FrameKeys& frames) const {
  return trajectory_tokens(q, k, v, layout, frames, scale);
}

Tensor TrajectoryAttention::along_trajectories(const Tensor& y, const FrameKeys& frames) const {
  const int64_t T = frames.frames, n = y.size(1);
  if (y.dim() != 4 || y.size(0) != heads || y.size(2) != T || y.size(3) != head_dim) {
    throw std::invalid_argument(std::string(design_name_) + ": trajectory tokens must be [" + std::to_string(heads) +
                                ", N, " + std::to_string(T) + ", " + std::to_string(head_dim) + "], got " +
                                shape_str(y.shape()));
  }
  // Heads side by side: [N, T', D]; stage 2 mixes the heads through proj_q and proj_kv.
  const Tensor merged = reshape(permute(y, {1, 2, 0, 3}), {n, T, dim});
  // The query: each token's trajectory token in its own frame, x_diag[i] = y[i, t_i]: [N, D].
  const Tensor x_diag = index_select(reshape(merged, {n * T, dim}), 0, frames.own_frame);
  const Tensor q2 = split_heads(proj_q->forward(x_diag) * scale, heads);  // [H, N, d]
  // proj_kv's halves as per-head blocks: W_k[h] = rows h*d .. h*d+d-1 of the first half, [H, d, D].
  auto weight_blocks = [&](int64_t which) {
    return reshape(narrow(proj_kv->weight, 0, which * dim, dim), {heads, head_dim, dim});
  };
  auto bias_blocks = [&](int64_t which) {  // [H, 1, d]
    return reshape(narrow(proj_kv->bias, 0, which * dim, dim), {heads, 1, head_dim});
  };
  // logits[h, i, t'] = q2_h[i] . k2_h[i, t'] with k2 = W_k y + b_k. Projecting all N*T' trajectory tokens
  // costs N T' D^2; folding W_k into the query instead costs N D^2:
  //   q2_h . (W_k[h] y + b_k[h]) = (W_k[h]^T q2_h) . y + q2_h . b_k[h]
  const Tensor folded = unsqueeze(matmul(q2, weight_blocks(0)), 2);                     // [H, N, 1, D]
  Tensor logits = sum(folded * unsqueeze(merged, 0), {-1});                             // [H, N, T']
  if (proj_kv->bias.defined()) logits = logits + sum(q2 * bias_blocks(0), {-1}, true);  // same for every t'
  // A frame the clip kept no token of has no trajectory token: leave it out of the softmax.
  if (frames.any_empty) logits = masked_fill(logits, unsqueeze(ops::to_device(frames.empty, logits.device()), 0), -INFINITY);
  const Tensor attn = unsqueeze(softmax(logits, -1), -1);  // [H, N, T', 1]
  Tensor o;                                                // [H, N, d]
  if (original_code) {
    o = sum(attn * y, {2});  // the official default: average the trajectory tokens themselves
  } else {
    // sum_t' a (W_v[h] y_t' + b_v[h]) = W_v[h] (sum_t' a y_t') + b_v[h], since the weights sum to 1.
    const Tensor mixed = sum(attn * unsqueeze(merged, 0), {2});  // [H, N, D]
    o = matmul(mixed, transpose(weight_blocks(1), 1, 2));        // [H, N, d]
    if (proj_kv->bias.defined()) o = o + bias_blocks(1);
  }
  return merge_heads(o);  // [N, D]
}

Tensor TrajectoryAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument(std::string(design_name_) + ": expected x [" + std::to_string(layout.total_tokens()) +
                                ", " + std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  QKV h = project_qkv(*qkv, x, heads);  // each [H, N, d]
  const FrameKeys frames = frame_keys(layout);
  const Tensor y = trajectories(h.q, h.k, h.v, layout, frames);  // stage 1: [H, N, T', d]
  return proj_drop->forward(proj->forward(along_trajectories(y, frames)));
}

bool read_original_code_option(const AttentionConfig& c, const std::string& design) {
  const double value = c.option("original_code", 1);
  if (value != 0 && value != 1) {
    throw std::invalid_argument("attention '" + design + "': option original_code must be 0 or 1, got " +
                                std::to_string(value));
  }
  return value == 1;
}

std::shared_ptr<AttentionLayer> make_trajectory_attention(const AttentionConfig& c) {
  return std::make_shared<TrajectoryAttention>(c.dim, c.heads, c.qkv_bias, c.proj_drop,
                                               read_original_code_option(c, "trajectory"));
}

}  // namespace glance::nn
