// Trajectory attention (Motionformer: Patrick et al., "Keeping Your Eye on the Ball: Trajectory Attention
// in Video Transformers", NeurIPS 2021). Registered as "trajectory".
//
// The idea. Joint space-time attention mixes every token of a clip with one softmax, so "where did this
// patch go?" and "what happened to it over time?" are blurred together. Trajectory attention asks the
// two questions one after the other:
//
//   Stage 1, per head: where is my content in frame t'? The query attends to the keys of EACH frame t'
//   separately (the softmax runs over the keys of one frame only), giving one "trajectory token" per
//   (query, frame): the query's patch as it appears in frame t'.
//       s[i, t', j] = scale * q_i . k_j                 for the keys j of frame t'
//       y[i, t']    = sum_j softmax_j(s[i, t', .]) v_j   y: [H, N, T', d]
//
//   Stage 2: how does it move along that trajectory? Heads merged (y: [N, T', D]); the query is the
//   trajectory token in its own frame, and it attends over the T' trajectory tokens of its trajectory.
//       x_diag[i] = y[i, t_i]                                        [N, D]  (t_i: the frame of token i)
//       q2 = proj_q(x_diag) * scale,   (k2, v2) = proj_kv(y)          D x D maps that MIX the heads
//       a2[i, t'] = softmax over t' of  q2_i . k2[i, t']   (per head) [H, N, T']
//       o_i = sum_t' a2[i, t'] y[i, t']      (the official default; sum_t' a2 v2 with original_code = 0)
//   out = proj(o)                                                      [N, D]
//
// Cost: stage 1 forms the same [L, L] score matrix per clip and head as joint attention, then T' small
// softmaxes over its column blocks; the trajectory tokens cost N * T' * D memory. Stage 2 never forms
// k2 and v2 (N * T' rows through a D x D map, the costliest step written the official way): W_k is
// folded into the query and W_v applied after the average, which is the same function (exact algebra;
// the float64 tests compare with the literal form):
//   q2_h . (W_k[h] y + b_k[h]) = (W_k[h]^T q2_h) . y + q2_h . b_k[h]        W_k[h]: head h's d rows of W_k
//   sum_t' a2 (W_v[h] y[t'] + b_v[h]) = W_v[h] (sum_t' a2 y[t']) + b_v[h]   (the weights a2 sum to 1)
//
// Official code followed: facebookresearch/Motionformer, slowfast/models/vit_helper.py, class
// TrajectoryAttention (approx = 'none'), commit bf43d50c. Parameter names as there: qkv, proj_q, proj_kv,
// proj (proj_q and proj_kv take the qkv bias flag, as in the code).
//
// Departures and notes.
//   * USE_ORIGINAL_TRAJ_ATTN_CODE: the official default aggregates the trajectory tokens themselves in
//     stage 2 (v = y) instead of v2 = W_v y; the authors keep this "typo" for replication. Option
//     original_code = 1 (default) follows it; original_code = 0 uses v2. proj_kv's v half is then unused
//     (it gets a zero gradient) but kept so checkpoints have the official shapes either way.
//   * CLS rule. The official model has a class token that attends jointly to all tokens with one plain
//     softmax, and patches never attend to it. glance's models have no class token (mean pooling), so
//     that branch is simply absent; the patch computation is unchanged by its absence.
//   * The softmax-attention kernels (nn/attention/kernel.h) do not serve stage 1: it is cross-attention
//     from every query of a clip to the keys of one frame, which a packed self-attention kernel cannot
//     express. Stage 1 is matmul + softmax on each frame's block of columns; set_kernel does nothing.
//
// RLT tokens. A clip's keys of frame t' are its kept tokens whose run starts at t' (layout.t() == t');
// stage 1 is a softmax segmented by (clip, key frame), over however many tokens that frame kept. A frame
// with NO kept token in a clip has no distribution: its trajectory token is zero and it is masked out of
// the stage-2 softmax (logit -inf). The query's own frame always holds the query, so stage 2 always has
// at least one frame. Run lengths are not used (no +log(run length) correction): a static patch kept
// once at t counts as a key of frame t only. (The reference's alternative, run-expanding the keys into
// every frame their run covers, restores the paper's per-frame semantics; not implemented.)
// Token order inside a clip is free: the keys are sorted by frame (stably) before stage 1.
//
// Options: original_code (1: stage 2 aggregates y, the official default; 0: aggregates W_v y).
#pragma once
#include <memory>
#include <vector>

#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

// Where the keys of each frame sit, clip by clip: what stage 1 needs to segment its softmax.
// Example: one clip on T' = 4 whose tokens have t = 0 0 0 1 1 3 gives blocks {0,3} {3,2} {5,0} {5,1}:
// frame 2 is empty, so empty[i][2] is true for all six tokens and own_frame = {0, 4, 8, 13, 17, 23}.
struct FrameKeys {
  struct Block {
    int64_t begin = 0, count = 0;  // rows [begin, begin + count) of the frame-sorted keys, from the clip's first row
  };
  int64_t frames = 1;                      // T'
  bool already_sorted = true;              // the tokens are already frame-major in every clip
  Tensor order;                            // int64 [N]: row r of the frame-sorted keys is token order[r]
  std::vector<std::vector<Block>> blocks;  // blocks[b][t']: clip b's keys of frame t' (count 0: empty frame)
  bool any_empty = false;                  // some clip lacks some frame
  Tensor empty;                            // Bool [N, T']: token i's clip has no token in frame t'
  Tensor own_frame;                        // int64 [N]: i * T' + t_i, the row of y[i, t_i] in y as [N*T', D]
};
FrameKeys frame_keys(const TokenLayout& layout);

// Stage 1, exact: q, k, v [H, N, d] in token order -> trajectory tokens y [H, N, T', d], where
// y[h, i, t'] = softmax over the keys of frame t' of token i's clip; zeros where the clip lacks t'.
Tensor trajectory_tokens(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const FrameKeys& frames, double scale);

class TrajectoryAttention : public AttentionLayer {
 public:
  TrajectoryAttention(int64_t dim, int64_t heads, bool qkv_bias = true, double proj_drop = 0.0,
                      bool original_code = true);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;

  // Stage 1: q, k, v [H, N, d] -> y [H, N, T', d]. Exact here; Orthoformer approximates it.
  virtual Tensor trajectories(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                              const FrameKeys& frames) const;
  // Stage 2: y [H, N, T', d] -> o [N, D] (before proj), attention over each token's trajectory.
  Tensor along_trajectories(const Tensor& y, const FrameKeys& frames) const;

  int64_t dim, heads, head_dim;
  double scale;        // head_dim^-1/2, used in both stages as in the official code
  bool original_code;  // stage 2 aggregates y itself (true) or W_v y
  std::shared_ptr<Linear> qkv, proj_q, proj_kv, proj;
  std::shared_ptr<Dropout> proj_drop;

 protected:
  const char* design_name_ = "trajectory";  // for error messages
};

std::shared_ptr<AttentionLayer> make_trajectory_attention(const AttentionConfig& config);

// Reads the option original_code (0 or 1) and throws naming it otherwise (shared with "orthoformer").
bool read_original_code_option(const AttentionConfig& config, const std::string& design);

}  // namespace glance::nn
