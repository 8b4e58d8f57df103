// Grouped attention: softmax attention restricted to tokens that share a group inside their clip.
//
// Many video designs are plain softmax attention over groups of tokens: TimeSformer's temporal step
// attends among the tokens of one spatial location, its spatial step among the tokens of one frame;
// ViViT's factorised models do the same. On a packed RLT batch the groups are ragged (a location has one
// token per run, a frame only its kept tokens), so we do not reshape to [B*S, T, D]. Instead:
//
//   1. sort the tokens by (clip, group) (stable, so each group keeps the (t, h, w) raster order),
//   2. build a TokenLayout whose "clips" are the groups (cu_seqlens from the group sizes),
//   3. run the ordinary packed attention kernel on the regrouped q, k, v,
//   4. put the rows back in the original order.
//
// Steps 1, 2 and 4 are index_select, so gradients flow through them, and every kernel (nn/attention/kernel.h:
// the reference, the CPU and the CUDA backends' attention) serves every grouped design unchanged.
#pragma once
#include <cstdint>
#include <vector>

#include "nn/attention/kernel.h"

namespace glance::nn {

// How to group the tokens of each clip.
enum class TokenGroup {
  Clip,      // all tokens of the clip (joint space-time attention)
  Frame,     // tokens with the same t (spatial attention)
  Location,  // tokens with the same (h, w) (temporal attention; on RLT, one token per run)
};
const char* token_group_name(TokenGroup g);

// Group id of every token, unique within its clip: [N_total]. Frame -> t; Location -> h * W' + w; Clip -> 0.
std::vector<int64_t> token_groups(const TokenLayout& layout, TokenGroup by);

// A permutation of the tokens that puts each (clip, group) together, and the layout of the groups.
struct Regrouping {
  Tensor order;        // int64 [N_total]: row i of the regrouped sequence is token order[i]
  Tensor inverse;      // int64 [N_total]: token j sits at row inverse[j] of the regrouped sequence
  TokenLayout groups;  // one "clip" per non-empty (clip, group), in (clip, group id) order
  std::vector<int64_t> group_of_row;  // the group id of each regrouped row's group (for callers that need it)
};
Regrouping regroup(const TokenLayout& layout, const std::vector<int64_t>& group);

// q, k, v [H, N_total, d] -> [H, N_total, d]: token i attends to the tokens of its clip with its group id.
Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Regrouping& regrouping,
                         const AttentionKernel& kernel, double scale);
Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, TokenGroup by,
                         const AttentionKernel& kernel, double scale);

}  // namespace glance::nn
