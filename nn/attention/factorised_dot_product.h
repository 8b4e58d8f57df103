// ViViT's factorised dot-product attention (Model 4), registered as "factorised_dot_product".
//
// The idea: keep ViT's attention layer exactly (one qkv projection, one output projection, the same
// parameters as "joint"), but let half of the heads attend along time and the other half across space.
// Each head sees T' or H'W' keys instead of T'H'W', and the output projection mixes the two halves.
//
//   x [N, D] (normalised by the block), H heads (H even) of width d = D / H
//   q, k, v = qkv(x) as [H, N, d]
//   heads 0 .. H/2-1:   o_h = softmax(q_h k_h^T / sqrt(d)) v_h   within (clip, h, w)   (over time)
//   heads H/2 .. H-1:   o_h = softmax(q_h k_h^T / sqrt(d)) v_h   within (clip, t)      (over space)
//   out = proj(concat of all heads, as [N, D])
//
// Follows google-research/scenic, scenic/projects/vivit/model_utils.py (commit 4a38d475),
// factorized_dot_product_attention: jnp.split of the heads into two halves, the first attending over
// axis 1 (t) of [b, t, hw, heads, d], the second over axis 2 (hw); q scaled by d^-1/2; outputs
// concatenated on the head axis before the output projection. Head h owns columns h*d .. h*d+d-1 of q,
// k, v (nn/attention/heads.h), so "the first half" is the same heads as scenic's.
//
// Departures: attention dropout (scenic's dropout on the attention weights) is not implemented; dropout
// after the output projection is (the block's `drop`). Scenic raises if the head count is not divisible
// by the number of attention axes (2); so does this (a clear error naming the head count).
//
// Class token: none, as in scenic (an assert forces global average pooling), and as in glance.
//
// RLT tokens: native, through per-head group masks: the time heads attend among the tokens at their
// (h, w) (one token per run, no +log(l) correction), the space heads among the kept tokens of their
// frame. Every token is in its own groups, so no softmax is ever empty.
//
// Options: none.
#pragma once
#include <memory>
#include <string>

#include "nn/attention/kernel.h"
#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

class FactorisedDotProductAttention : public AttentionLayer {
 public:
  FactorisedDotProductAttention(int64_t dim, int64_t heads, bool qkv_bias = true,
                                const std::string& kernel = "device", double proj_drop = 0.0);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;  // [N, D] -> [N, D]
  void set_kernel(const std::string& name) override;

  int64_t dim, heads, head_dim;
  std::shared_ptr<Linear> qkv, proj;  // named as in "joint", so the two share checkpoints
  std::shared_ptr<Dropout> proj_drop;

 private:
  AttentionKernel kernel_;
};

std::shared_ptr<AttentionLayer> make_factorised_dot_product_attention(const AttentionConfig& config);

}  // namespace glance::nn
