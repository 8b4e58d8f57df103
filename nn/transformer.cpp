#include "nn/transformer.h"

namespace glance::nn {

TransformerBlock::TransformerBlock(const BlockConfig& c) {
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(c.dim, c.norm_eps));
  AttentionConfig ac;
  ac.dim = c.dim, ac.heads = c.heads, ac.qkv_bias = c.qkv_bias, ac.proj_drop = c.drop;
  ac.kernel = c.attention_kernel, ac.grid = c.grid, ac.options = c.attention_options;
  attn = register_module("attn", make_attention(c.attention, ac));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(c.dim, c.norm_eps));
  mlp = register_module("mlp", std::make_shared<Mlp>(c.dim, static_cast<int64_t>(c.dim * c.mlp_ratio), c.drop));
  drop_path = register_module("drop_path", std::make_shared<DropPath>(c.drop_path));
}

Tensor TransformerBlock::forward(const Tensor& x, const TokenLayout& layout) const {
  const TokenLayout out_layout = attn->output_layout(layout);
  // h = the skip path + the attention update; norm2(h) feeds the MLP. The add and the norm are one kernel where
  // the device offers it (LayerNorm::add_and_norm).
  const auto [h, h_normed] =
      norm2->add_and_norm(attn->skip(x, layout), drop_path->forward(attn->update(x, layout, *norm1), out_layout));
  return h + drop_path->forward(mlp->forward(h_normed), out_layout);
}

}  // namespace glance::nn
