// ViViT model 2, the factorised encoder (Arnab et al. 2021; scenic/projects/vivit/model.py, SpaceTimeViViT).
//
// Not a different attention inside a block but a different model around the blocks:
//
//   tokens [N, D] --(the model's blocks, attention within each frame: the spatial encoder)--> [N, D]
//     -> spatial_norm (LayerNorm), then the mean of each (clip, frame)    frame tokens [F, D]
//     -> + temporal_pos[t] (learned, one row per frame)
//     -> temporal blocks (joint attention over each clip's frame tokens)  [F, D]
//     -> the model's mean per clip and head
//
// So "factorised_encoder" registers the frame-grouped attention for the model's blocks (L_s = depth
// spatial layers, weights shared over frames as scenic's vmap) and the model adds a TemporalEncoder
// (L_t = option `temporal_depth`, default 1; the paper's ablations use 4 with 12 spatial layers).
//
// Departures from scenic, and why:
//   - scenic gives each frame its own CLS token and the temporal encoder a CLS token too (or GAP, a
//     config option). glance's model has no CLS token, so both encoders use global average pooling
//     (the 'gap' classifier of the code).
//   - On an RLT batch a frame can be empty (every tubelet of it repeats the previous one). scenic always
//     sees n_t frames; here an empty frame gives no frame token (the documented option of masking empty
//     frames out), and the remaining frame tokens keep their own t in temporal_pos.
#pragma once
#include <memory>
#include <vector>

#include "nn/attention/layer.h"
#include "nn/transformer.h"

namespace glance::nn {

class TemporalEncoder : public Module {
 public:
  // config: the model's width, heads, kernel and grid (grid.t = frames); depth: temporal layers.
  TemporalEncoder(const AttentionConfig& config, int64_t depth, double mlp_ratio);
  // x [N, D] on `layout` (the spatial encoder's output) -> frame tokens [F, D]; *frame_layout receives
  // their layout (clip b holds its non-empty frames, t = the frame, h = w = 0, grid (T', 1, 1)).
  Tensor forward(const Tensor& x, const TokenLayout& layout, TokenLayout* frame_layout) const;

  std::shared_ptr<LayerNorm> spatial_norm;
  Tensor temporal_pos;  // [T', D]
  std::vector<std::shared_ptr<TransformerBlock>> blocks;
};

// The frame tokens' layout and the averaging matrix [F, N] (row f: 1/count over the tokens of frame f).
struct FramePooling {
  TokenLayout frames;
  Tensor average;  // float32 [F, N]
  Tensor frame_t;  // int64 [F]: each frame token's t
};
FramePooling pool_frames(const TokenLayout& layout);

std::shared_ptr<AttentionLayer> make_factorised_encoder_attention(const AttentionConfig& config);
int64_t factorised_encoder_temporal_depth(const AttentionConfig& config);  // option temporal_depth (default 1)

}  // namespace glance::nn
