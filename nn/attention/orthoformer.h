// Orthoformer: trajectory attention with stage 1 approximated through a few "prototype" queries
// (Motionformer, Patrick et al., NeurIPS 2021, Sec. 3.2). Registered as "orthoformer".
//
// The idea. Stage 1 of trajectory attention (nn/attention/trajectory.h) needs every query's scores
// against every key of its clip: an [L, L] matrix per clip and head. Orthoformer routes the attention
// through R landmarks P (R << L), so only [L, R] and [R, L] matrices exist:
//
//   q~ = q * d^-1/4,  k~ = k * d^-1/4            (so q~ . k~ = q . k / sqrt(d), the usual scale)
//   P  = R rows of q~ that are as mutually orthogonal as possible (chosen greedily, see below)  [R, d]
//   K1 = softmax over l of  q~ P^T                 [L, R]      query -> landmark
//   K2 = softmax over the keys of EACH frame of  P k~^T   [R, T', keys of frame t']   landmark -> frame
//   y[i, t'] = sum_l K1[i, l] sum_p K2[l, t', p] v[t', p]   [L, T', d]   (replaces the exact stage 1)
//
// Stage 2 (attention along each trajectory, proj_q, proj_kv, proj) is trajectory attention's, unchanged:
// OrthoformerAttention derives from TrajectoryAttention and replaces only `trajectories`.
//
// Prototype selection (per clip and per head, under no-grad, from the queries ONLY, as the code does;
// the paper says queries and keys): normalise the rows of q~ to unit length; take a first index; then
// R - 1 times pick the unselected row whose largest |cos| to the selected rows is smallest (ties: the
// lowest index). The landmarks are the UNnormalised rows of q~ at the chosen indices, in token order.
//
// Official code followed: facebookresearch/Motionformer, slowfast/models/orthoformer_helper.py,
// orthoformer() with shared_landmarks = True and orthogonal_landmarks() with subsample_fraction = 1.0,
// called from vit_helper.py TrajectoryAttention (approx = 'orthoformer'); commit bf43d50c.
//
// Departures.
//   * First prototype: the code draws a uniformly random index on every call. Here it is deterministic
//     (option seed): seed = 0 takes token 0 of the clip; seed > 0 takes a fixed pseudo-random index that
//     depends only on (seed, head, clip size), so a clip gives the same result packed or alone.
//   * The landmarks are constants for autograd, as in the code (they are built inside torch.no_grad()):
//     gradients reach q through K1 and k through K2, not through the landmark rows themselves.
//   * The selection runs on the host in float64 (the code: float32 on the device). With exact ties the
//     lowest index wins, as torch's argmin.
//   * Default prototypes = 16 (the code's APPROX_ATTN_DIM default is 128, more than the tiny model's 128
//     tokens per clip; the paper ablates 16, 64, 128). Clamped to the clip's token count. Even with
//     R = L the result is NOT exact attention: it is a two-step (query -> landmark -> key) kernel.
//
// CLS rule: as trajectory attention (the official class token's joint-attention branch does not exist
// in glance; patches never attended to it).
//
// RLT tokens. Selection runs over each clip's kept queries. K2's softmax is segmented by (clip, key
// frame) over the kept tokens of that frame; a frame a clip kept no token of has no K2 block: its
// trajectory token is zero and stage 2 masks it out, as in trajectory attention. Run lengths unused.
//
// Options: prototypes (16; R, clamped to each clip's token count), seed (0; the first prototype, see
// above), original_code (1; stage 2 as in trajectory.h).
#pragma once
#include <memory>
#include <vector>

#include "nn/attention/trajectory.h"

namespace glance::nn {

// Greedy near-orthogonal selection among the rows of `rows` [L, d] (any float dtype): `count` indices
// (clamped to L), the first one `first`, returned sorted ascending (token order).
std::vector<int64_t> orthogonal_prototypes(const Tensor& rows, int64_t count, int64_t first);

// The index of the first prototype for option `seed` (see the header comment), in [0, tokens).
int64_t first_prototype(int64_t seed, int64_t head, int64_t tokens);

// The landmarks of every clip: for clip b a constant [H, R_b, d] (R_b = min(count, L_b)) holding the rows
// of q_scaled [H, N, d] chosen per head by orthogonal_prototypes. Empty clips get an undefined tensor.
std::vector<Tensor> orthoformer_landmarks(const Tensor& q_scaled, const TokenLayout& layout, int64_t count,
                                          int64_t seed);

// Stage 1 through the landmarks: q, k, v [H, N, d] (q and k unscaled; d^-1/4 is applied here),
// landmarks as above (already in the scaled space) -> y [H, N, T', d], zeros where a clip lacks t'.
Tensor orthoformer_trajectory_tokens(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const std::vector<Tensor>& landmarks, const TokenLayout& layout,
                                     const FrameKeys& frames);

class OrthoformerAttention : public TrajectoryAttention {
 public:
  OrthoformerAttention(int64_t dim, int64_t heads, int64_t prototypes = 16, int64_t seed = 0, bool qkv_bias = true,
                       double proj_drop = 0.0, bool original_code = true);
  Tensor trajectories(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                      const FrameKeys& frames) const override;

  int64_t prototypes, seed;
};

std::shared_ptr<AttentionLayer> make_orthoformer_attention(const AttentionConfig& config);

}  // namespace glance::nn
