#include "nn/attention/divided.h"

#include <stdexcept>

#include "nn/init.h"

namespace glance::nn {

DividedSpaceTimeAttention::DividedSpaceTimeAttention(int64_t d, int64_t h, bool qkv_bias, const std::string& kernel,
                                                     double drop)
    : MultiHeadSelfAttention(d, h, qkv_bias, kernel, drop, TokenGroup::Frame) {  // the spatial step: qkv, proj
  temporal_norm1 = register_module("temporal_norm1", std::make_shared<LayerNorm>(d, 1e-6));  // TimeSformer's eps
  temporal_attn = register_module(
      "temporal_attn", std::make_shared<MultiHeadSelfAttention>(d, h, qkv_bias, kernel, drop, TokenGroup::Location));
  temporal_fc = register_module("temporal_fc", std::make_shared<Linear>(d, d));
}

Tensor DividedSpaceTimeAttention::temporal_step(const Tensor& x, const TokenLayout& layout) const {
  // Each token attends to the tokens at its (h, w) in its clip: one per frame, or one per run on RLT.
  return temporal_fc->forward(temporal_attn->forward(temporal_norm1->forward(x), layout));
}

Tensor DividedSpaceTimeAttention::update(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("divided attention: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  Tensor temporal = temporal_step(x, layout);                       // [N, D]
  Tensor spatial = forward(norm1.forward(x + temporal), layout);    // attention within each frame, [N, D]
  return temporal + spatial;  // the block adds x: x + temporal + spatial = xt + spatial
}

void DividedSpaceTimeAttention::reset_special_parameters() {
  // TimeSformer zeroes temporal_fc in every block, so the temporal branch starts as the identity.
  init::zeros_(temporal_fc->weight);
  init::zeros_(temporal_fc->bias);
}

void DividedSpaceTimeAttention::set_kernel(const std::string& name) {
  MultiHeadSelfAttention::set_kernel(name);  // the spatial step
  temporal_attn->set_kernel(name);
}

std::shared_ptr<AttentionLayer> make_divided_attention(const AttentionConfig& c) {
  return std::make_shared<DividedSpaceTimeAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop);
}

}  // namespace glance::nn
