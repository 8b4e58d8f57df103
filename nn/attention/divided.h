// TimeSformer's divided space-time attention ("T+S"), registered as "divided".
//
// The idea: instead of letting every token attend to all T'H'W' tokens of its clip (joint attention,
// O(N^2) per clip), attend in two cheap steps: first along time (the tokens at the same place (h, w)),
// then across space (the tokens of the same frame t). Each step has its own weights.
//
//   x [N, D] (the block input, not normalised), H heads of width d = D / H
//   temporal = temporal_fc( TAttn( temporal_norm1(x) ) )      TAttn: MHA within (clip, h, w)   [N, D]
//   xt       = x + temporal                                    the temporal residual
//   spatial  = SAttn( norm1(xt) )                              SAttn: MHA within (clip, t)      [N, D]
//   update   = temporal + spatial                              so the block's x + update = xt + spatial
//
// TAttn and SAttn are ordinary multi-head attentions (qkv and proj, scale d^-1/2) restricted to groups of
// tokens by grouped attention (nn/attention/grouped.h); temporal_norm1 is the step's own LayerNorm,
// temporal_fc an extra D x D Linear, and norm1 the block's own LayerNorm (TimeSformer's `norm1`).
//
// Follows facebookresearch/TimeSformer, timesformer/models/vit.py (commit a5ef29a7), Block.forward with
// attention_type 'divided_space_time'. The class *is* the spatial attention (it extends space_only's
// MultiHeadSelfAttention, so its qkv/proj are named as TimeSformer's `attn.qkv` / `attn.proj`) and adds
// temporal_norm1, temporal_attn and temporal_fc in front, as TimeSformer's Block does.
//
// Initialisation: the model's generic init (trunc_normal 0.02 weights, zero biases), then
// reset_special_parameters() zeroes temporal_fc (weight and bias), as TimeSformer does in every block:
// the temporal branch starts as the identity and the block starts as a space-only block.
//
// Departures from the code, and why:
//   - Stochastic depth: TimeSformer drops the temporal attention (before temporal_fc) and the spatial
//     residual with two independent draws; glance's block applies one drop_path to the whole update
//     (temporal + spatial, temporal_fc's bias included). The same with drop_path = 0 and in eval mode.
//   - No class token: glance's RLT model mean-pools, so there is no CLS to replicate per frame and
//     average back (TimeSformer's CLS rule; on RLT it would be averaged over non-empty frames). The spatial
//     step is plain per-frame attention over the frame's patches.
//   - Token order: TimeSformer orders patches space-major `(h w t)`; glance packs (t, h, w) raster order.
//     Grouping does not depend on the order, so the result is the same per token.
//
// RLT tokens: native, through group masks. A location's group holds one token per run (a static patch
// that lasted l tubelets is one key, not l: no +log(l) correction); a frame's group holds only its kept
// tokens and may be small. Every token is in its own groups, so no softmax is ever empty.
//
// forward(y, layout) alone is the spatial step on already-normalised tokens (space_only attention); the
// block calls update(x, layout, norm1), which is the whole design.
//
// Options: none.
#pragma once
#include <memory>

#include "nn/attention/multi_head.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

namespace glance::nn {

class DividedSpaceTimeAttention : public MultiHeadSelfAttention {
 public:
  DividedSpaceTimeAttention(int64_t dim, int64_t heads, bool qkv_bias = true, const std::string& kernel = "device",
                            double proj_drop = 0.0);

  // temporal + SAttn(norm1(x + temporal)), see above. x [N, D] -> [N, D].
  Tensor update(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const override;
  // The temporal branch alone: temporal_fc(TAttn(temporal_norm1(x))), [N, D] -> [N, D].
  Tensor temporal_step(const Tensor& x, const TokenLayout& layout) const;

  void reset_special_parameters() override;  // temporal_fc = 0
  void set_kernel(const std::string& name) override;

  std::shared_ptr<LayerNorm> temporal_norm1;
  std::shared_ptr<MultiHeadSelfAttention> temporal_attn;  // grouped by location (h, w)
  std::shared_ptr<Linear> temporal_fc;
};

std::shared_ptr<AttentionLayer> make_divided_attention(const AttentionConfig& config);

}  // namespace glance::nn
