// Deformable space-time attention (D-ST-A of the Deformable Video Transformer, J. Wang and L. Torresani,
// CVPR 2022), registered as "deformable".
//
// NO OFFICIAL CODE EXISTS (no repository implements DVT; the reference notes reconstruct it from the
// abstract and a reading note). This file is our design, in the style of Deformable DETR's MSDeformAttn
// (sampling_offsets, attention_weights, value_proj, output_proj), with frames in place of feature levels.
//
// Each query token i at (t, h, w) looks at every frame t' of its sub-clip (the T' frames split into groups
// of `subclip`; S = subclip slots) and, per head, at `points` sampling points in each:
//
//   MD(t -> t')      motion displacement of the cell (h, w) from frame t to t' (block matching, below)  [2]
//   m(i, t')         = motion_embed([MD_y, MD_x, t' - t])                                                  [D]
//   z(i, t')         = x_i + m(i, t')                    the query and the motion cue, summed              [D]
//   Δ(i, t', h, n)   = sampling_offsets(z)               (y, x) in token units                [H, points, 2]
//   p(i, t', h, n)   = (h, w) + MD(t -> t') + Δ
//   α(i, ·, h, ·)    = softmax over the S x points samples of attention_weights(z)               [H, points]
//   V                = value_proj(x) on the token grid of each frame, split into heads     [H', W', d] per head
//   y_i (head h)     = Σ_{t', n} α · bilinear(V[frame t', head h], p)   (zero outside the frame)        [d]
//   out_i            = output_proj(heads side by side)                                                 [D]
//
// The motion cue. DVT takes MD from the compressed video's motion vectors (macroblock MVs accumulated
// from t to t', plus RGB residuals, as in CoViAR): free at decode time. glance decodes no codec stream, so
// MD comes from BLOCK MATCHING ON THE TOKENS: for each cell (t, h, w), the integer shift (dy, dx) within
// +-search that minimises |f(t, h, w) - f(t+1, h+dy, w+dx)|^2 over the layer's input features f (a token
// is the block: one tubelet, about a codec macroblock), likewise towards t-1; MD(t -> t') follows these
// vectors frame by frame. It is computed on the host, under no gradient (the features are detached), as
// a codec's MVs would be a fixed input. Ties go to the smallest shift, so a static region gets MD = 0.
// Caveat: f includes the model's position encoding, which favours zero shifts.
//
// RLT tokens (not native: sampling needs the dense per-frame maps). V and the block-matching features are
// densified with the run-expansion (run_expansion.h: each kept token copied into every cell of its run);
// the queries stay the kept tokens. So the RLT layer equals the dense layer on the run-expanded clip read at
// the kept tokens; RLT saves the queries' work (offsets, weights, samples), not the dense value maps.
//
// Our choices where the paper is unknown or we simplify (documented in the notes):
//   - the query is the normed token x_i itself, as in MSDeformAttn (a separate W_q would be redundant with
//     the sampling_offsets and attention_weights Linears);
//   - q and the motion embedding are summed, and the embedding also gets t' - t, so that the offsets and
//     weights can tell the frames apart when MD is 0 (MSDeformAttn has per-level projections for this);
//   - α is one softmax per head over all (t', n) samples of the sub-clip (the learned-projection form;
//     the q.k alternative is what the tests use through deformable_sampling_attention);
//   - init: sampling_offsets and attention_weights start at zero (weights and biases), so the points start
//     at p = (h, w) + MD and α is uniform. MSDeformAttn also zeroes both weights but sets the offsets'
//     bias to a fixed ring pattern (point n of head h at (n+1) cells in direction 2 pi h / H); on glance's
//     small grids (4 x 4) that ring would leave the frame, so all points start at p + MD instead;
//   - the multi-scale branch (D-MS-A) and the MLP-Mixer fusion of the paper are left out: this is D-ST-A;
//   - no CLS token (glance's model has none; it pools by mean): the paper's CLS handling is moot.
//   - a last sub-clip shorter than `subclip` (T' not a multiple) has its missing slots masked out.
//
// Options: subclip (frames per sub-clip, default 4; clamped to T'), points (per frame and head, default 4),
//          search (block-matching radius in tokens, default 1; 0 means MD = 0).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

// Frame-to-frame motion vectors of every cell of a dense batch, by block matching (host, no gradient).
struct MotionField {
  int64_t batch = 0;
  Grid grid;
  // [B * T'H'W' * 2]: (dy, dx) from cell (b, t, h, w) to its best match in frame t+1 (to_next) and t-1
  // (to_prev); (0, 0) where that frame does not exist.
  std::vector<int64_t> to_next, to_prev;
};
// features [B * T'H'W', C], dense clips in raster order (any float dtype; read detached).
MotionField block_matching(const Tensor& features, int64_t batch, const Grid& grid, int64_t search);
// MD(t -> t_to) of the cell (b, t, h, w): the vectors followed frame by frame; (dy, dx).
std::array<int64_t, 2> motion_displacement(const MotionField& motion, int64_t b, int64_t t, int64_t h, int64_t w,
                                           int64_t t_to);

// The sampling-attention core, with the sampling positions and the logits given:
//   values    [H, F, H', W', d]  the value map of every frame, per head
//   positions [Nq, S, H, P, 2]   (y, x) in token units on the frame of each (query, slot)
//   logits    [Nq, S, H, P]
//   frame     host [Nq * S]      the frame (index into F) each (query, slot) reads; -1 = no frame (masked)
// Returns [Nq, H, d]: per query and head, Σ_{s, n} softmax_{(s, n)}(logits) * bilinear(values[h, frame], pos),
// a neighbour outside the frame counting as 0. Differentiable in values, positions and logits. Every query
// needs at least one slot with a frame.
Tensor deformable_sampling_attention(const Tensor& values, const Tensor& positions, const Tensor& logits,
                                     const std::vector<int64_t>& frame);

class DeformableAttention : public AttentionLayer {
 public:
  DeformableAttention(int64_t dim, int64_t heads, double proj_drop, int64_t subclip, int64_t points, int64_t search);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;
  void reset_special_parameters() override;  // sampling_offsets and attention_weights to zero

  int64_t dim, heads, head_dim, subclip, points, search;
  std::shared_ptr<Linear> motion_embed;       // [MD_y, MD_x, t' - t] -> D
  std::shared_ptr<Linear> sampling_offsets;   // D -> H * points * 2
  std::shared_ptr<Linear> attention_weights;  // D -> H * points
  std::shared_ptr<Linear> value_proj, output_proj;
  std::shared_ptr<Dropout> proj_drop;
};

std::shared_ptr<AttentionLayer> make_deformable_attention(const AttentionConfig& config);

}  // namespace glance::nn
