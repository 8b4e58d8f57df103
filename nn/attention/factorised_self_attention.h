// ViViT's factorised self-attention (Model 3), registered as "factorised_self_attention".
//
// The idea: like TimeSformer's divided attention, replace joint attention over the T'H'W' tokens of a
// clip by two residual steps, each a plain multi-head attention with its own LayerNorm and weights: one
// along time (the tokens at the same (h, w)), one across space (the tokens of the same frame t). Unlike
// TimeSformer there is no extra temporal_fc, and the order of the two steps is an option.
//
//   x [N, D] (the block input, not normalised), H heads of width d = D / H
//   order time_space (the default):
//     x1 = x  + MSA_t( LN_t(x) )        MSA_t: MHA within (clip, h, w)    [N, D]
//     x2 = x1 + MSA_s( LN_s(x1) )       MSA_s: MHA within (clip, t)       [N, D]
//   order space_time: the same two steps, spatial first.
//   update = x2 - x = (sum of the two attention outputs), so the block's x + update = x2.
//
// LN_s is the block's own norm1 (passed to update), MSA_s is this class's own qkv/proj (it extends
// space_only's MultiHeadSelfAttention); LN_t and MSA_t are the members temporal_norm and temporal_attn.
// The block's MLP step (x2 + MLP(norm2 x2)) is scenic's LayerNorm_mlp + MlpBlock.
//
// Follows google-research/scenic, scenic/projects/vivit/model.py (commit 4a38d475),
// EncoderFactorizedSelfAttentionBlock: scenic's LayerNorm_time / MultiHeadDotProductAttention_time are
// temporal_norm / temporal_attn here; LayerNorm_space / MultiHeadDotProductAttention_space are the
// block's norm1 and this layer's qkv/proj. Scale d^-1/2, biases on q, k, v and the output, LayerNorm eps
// 1e-6 (flax's default).
//
// Initialisation: as the code, not as the paper. The paper initialises the temporal MSA to zero so the
// temporal step starts as a residual identity; scenic's code gives both MSAs an ordinary init (and, when
// fine-tuning from an image ViT, copies the pretrained MSA into both, init_encoderblock). Here both get
// the model's generic init (trunc_normal 0.02 weights, zero biases, like every glance design; scenic's
// random init is xavier_uniform). The option zero_init_temporal = 1 gives the paper's start instead, by
// zeroing MSA_t's output projection (weight and bias): zeroing q, k, v as well would leave their
// gradients at zero forever, so the output projection is the useful reading of "zero weights".
//
// Departures from the code, and why:
//   - Stochastic depth: scenic's block takes droplayer_p but never applies it (only dropout after each
//     MSA); glance's block applies its drop_path to the whole update. The same with drop_path = 0.
//   - Attention dropout (scenic's attention_dropout_rate) is not implemented; dropout after each MSA's
//     output projection is (the block's `drop`).
//
// Class token: none, as in scenic (an assert there forces global average pooling), and as in glance.
//
// RLT tokens: native, through group masks. A location's group holds one token per run (one key per run,
// no +log(l) correction); a frame's group holds its kept tokens and may be small. Every token is in its
// own groups, so no softmax is ever empty.
//
// forward(y, layout) alone is the spatial step on already-normalised tokens; the block calls update.
//
// Options:
//   order               0 = time_space (default, scenic's default), 1 = space_time
//   zero_init_temporal  0 (default, the code) or 1 (the paper: MSA_t's output projection starts at zero)
#pragma once
#include <memory>

#include "nn/attention/multi_head.h"
#include "nn/layer_norm.h"

namespace glance::nn {

class FactorisedSelfAttention : public MultiHeadSelfAttention {
 public:
  enum class Order { TimeSpace, SpaceTime };

  FactorisedSelfAttention(int64_t dim, int64_t heads, Order order = Order::TimeSpace, bool zero_init_temporal = false,
                          bool qkv_bias = true, const std::string& kernel = "device", double proj_drop = 0.0);

  // The sum of the two residual steps, in `order`. x [N, D] -> [N, D].
  Tensor update(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const override;
  // One step each, residual not added: MSA_t(LN_t(x)) and MSA_s(norm1(x)). [N, D] -> [N, D].
  Tensor temporal_step(const Tensor& x, const TokenLayout& layout) const;
  Tensor spatial_step(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const;

  void reset_special_parameters() override;  // nothing, unless zero_init_temporal
  void set_kernel(const std::string& name) override;

  Order order;
  bool zero_init_temporal;
  std::shared_ptr<LayerNorm> temporal_norm;
  std::shared_ptr<MultiHeadSelfAttention> temporal_attn;  // grouped by location (h, w)
};

std::shared_ptr<AttentionLayer> make_factorised_self_attention(const AttentionConfig& config);

}  // namespace glance::nn
