#include "nn/attention/factorised_self_attention.h"

#include <sstream>
#include <stdexcept>

#include "nn/init.h"

namespace glance::nn {

FactorisedSelfAttention::FactorisedSelfAttention(int64_t d, int64_t h, Order o, bool zero_init, bool qkv_bias,
                                                 const std::string& kernel, double drop)
    : MultiHeadSelfAttention(d, h, qkv_bias, kernel, drop, TokenGroup::Frame),  // MSA_s: qkv, proj
      order(o),
      zero_init_temporal(zero_init) {
  temporal_norm = register_module("temporal_norm", std::make_shared<LayerNorm>(d, 1e-6));  // LN_t
  temporal_attn = register_module(                                                          // MSA_t
      "temporal_attn", std::make_shared<MultiHeadSelfAttention>(d, h, qkv_bias, kernel, drop, TokenGroup::Location));
}

Tensor FactorisedSelfAttention::temporal_step(const Tensor& x, const TokenLayout& layout) const {
  return temporal_attn->forward(temporal_norm->forward(x), layout);  // within (clip, h, w)
}

Tensor FactorisedSelfAttention::spatial_step(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const {
  return forward(norm1.forward(x), layout);  // within (clip, t)
}

Tensor FactorisedSelfAttention::update(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("factorised_self_attention: expected x [" + std::to_string(layout.total_tokens()) +
                                ", " + std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  if (order == Order::TimeSpace) {
    Tensor temporal = temporal_step(x, layout);                      // x1 = x + temporal
    Tensor spatial = spatial_step(x + temporal, layout, norm1);      // x2 = x1 + spatial
    return temporal + spatial;
  }
  Tensor spatial = spatial_step(x, layout, norm1);                   // x1 = x + spatial
  Tensor temporal = temporal_step(x + spatial, layout);              // x2 = x1 + temporal
  return spatial + temporal;
}

void FactorisedSelfAttention::reset_special_parameters() {
  if (!zero_init_temporal) return;  // the code's init: both MSAs keep the model's generic init
  init::zeros_(temporal_attn->proj->weight);
  init::zeros_(temporal_attn->proj->bias);
}

void FactorisedSelfAttention::set_kernel(const std::string& name) {
  MultiHeadSelfAttention::set_kernel(name);  // MSA_s
  temporal_attn->set_kernel(name);
}

namespace {
std::string shown(double value) {  // 2 as "2", 0.5 as "0.5"
  std::ostringstream out;
  out << value;
  return out.str();
}
}  // namespace

std::shared_ptr<AttentionLayer> make_factorised_self_attention(const AttentionConfig& c) {
  const double order = c.option("order", 0);
  if (order != 0 && order != 1) {
    throw std::invalid_argument(
        "factorised_self_attention: option order must be 0 (time_space) or 1 (space_time), got " +
        shown(order));
  }
  const double zero_init = c.option("zero_init_temporal", 0);
  if (zero_init != 0 && zero_init != 1) {
    throw std::invalid_argument("factorised_self_attention: option zero_init_temporal must be 0 or 1, got " +
                                shown(zero_init));
  }
  return std::make_shared<FactorisedSelfAttention>(c.dim, c.heads,
                                                   order == 0 ? FactorisedSelfAttention::Order::TimeSpace
                                                              : FactorisedSelfAttention::Order::SpaceTime,
                                                   zero_init == 1, c.qkv_bias, c.kernel, c.proj_drop);
}

}  // namespace glance::nn
