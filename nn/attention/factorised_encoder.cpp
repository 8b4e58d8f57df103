#include "nn/attention/factorised_encoder.h"

#include <stdexcept>

#include "nn/attention/multi_head.h"
#include "nn/init.h"
#include "tensor/ops.h"

namespace glance::nn {

FramePooling pool_frames(const TokenLayout& layout) {
  const int64_t N = layout.total_tokens(), T = layout.grid().t;
  const int32_t* t = layout.t().data<int32_t>();
  std::vector<int64_t> frames_per_clip, frame_t;
  std::vector<int32_t> ft, zeros;
  std::vector<std::pair<int64_t, int64_t>> members;  // (frame row, token)
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    // first frame row of each t in this clip (-1: empty frame, no row)
    std::vector<int64_t> row_of_t(static_cast<size_t>(T), -1);
    for (int64_t i = layout.clip_begin(b); i < layout.clip_begin(b) + layout.clip_tokens(b); ++i) {
      if (row_of_t[t[i]] < 0) row_of_t[t[i]] = 0;  // mark non-empty
    }
    int64_t count = 0;
    for (int64_t ti = 0; ti < T; ++ti) {
      if (row_of_t[ti] < 0) continue;
      row_of_t[ti] = static_cast<int64_t>(frame_t.size());
      frame_t.push_back(ti), ft.push_back(static_cast<int32_t>(ti)), zeros.push_back(0);
      ++count;
    }
    for (int64_t i = layout.clip_begin(b); i < layout.clip_begin(b) + layout.clip_tokens(b); ++i) {
      members.emplace_back(row_of_t[t[i]], i);
    }
    frames_per_clip.push_back(count);
  }
  const int64_t F = static_cast<int64_t>(frame_t.size());
  std::vector<float> average(static_cast<size_t>(F * N), 0.0f);
  std::vector<int64_t> size(static_cast<size_t>(F), 0);
  for (auto [f, i] : members) ++size[f];
  for (auto [f, i] : members) average[f * N + i] = 1.0f / static_cast<float>(size[f]);
  FramePooling p;
  p.frames = TokenLayout(frames_per_clip, ops::from_vector(ft), ops::from_vector(zeros), ops::from_vector(zeros),
                         ops::ones({F}, DType::Int32), Grid{T, 1, 1});
  p.average = ops::from_vector(average, {F, N});
  p.frame_t = ops::from_vector(frame_t);
  return p;
}

TemporalEncoder::TemporalEncoder(const AttentionConfig& c, int64_t depth, double mlp_ratio) {
  if (depth < 1) throw std::invalid_argument("factorised_encoder: temporal_depth = " + std::to_string(depth) + " must be >= 1");
  spatial_norm = register_module("spatial_norm", std::make_shared<LayerNorm>(c.dim, 1e-6));
  temporal_pos = register_parameter("temporal_pos", ops::empty({c.grid.t, c.dim}));
  init::trunc_normal_(temporal_pos, 0.02);
  auto list = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < depth; ++i) {
    BlockConfig bc;
    bc.dim = c.dim, bc.heads = c.heads, bc.mlp_ratio = mlp_ratio, bc.qkv_bias = c.qkv_bias;
    bc.attention = "joint", bc.attention_kernel = c.kernel, bc.grid = Grid{c.grid.t, 1, 1};
    blocks.push_back(list->push_back(std::make_shared<TransformerBlock>(bc)));
  }
}

Tensor TemporalEncoder::forward(const Tensor& x, const TokenLayout& layout, TokenLayout* frame_layout) const {
  FramePooling p = pool_frames(layout);
  Tensor frames = matmul(ops::to_device(to_dtype(p.average, x.dtype()), x.device()), spatial_norm->forward(x));  // [F, D]
  frames = frames + index_select(temporal_pos, 0, p.frame_t);                        // + its frame's row
  for (const auto& block : blocks) frames = block->forward(frames, p.frames);
  if (frame_layout) *frame_layout = p.frames;
  return frames;
}

int64_t factorised_encoder_temporal_depth(const AttentionConfig& c) {
  return static_cast<int64_t>(c.option("temporal_depth", 1));
}

std::shared_ptr<AttentionLayer> make_factorised_encoder_attention(const AttentionConfig& c) {
  factorised_encoder_temporal_depth(c);  // the model reads it; asking here marks the option as known
  return std::make_shared<MultiHeadSelfAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop, TokenGroup::Frame);
}

}  // namespace glance::nn
