#include "nn/transformer.h"

namespace glance::nn {

TransformerBlock::TransformerBlock(const BlockConfig& c) {
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(c.dim, c.norm_eps));
  attn = register_module("attn", std::make_shared<MultiHeadSelfAttention>(c.dim, c.heads, c.qkv_bias,
                                                                           c.attention_kernel, c.drop));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(c.dim, c.norm_eps));
  mlp = register_module("mlp", std::make_shared<Mlp>(c.dim, static_cast<int64_t>(c.dim * c.mlp_ratio), c.drop));
  drop_path = register_module("drop_path", std::make_shared<DropPath>(c.drop_path));
}

Tensor TransformerBlock::forward(const Tensor& x, const TokenLayout& layout) const {
  Tensor h = x + drop_path->forward(attn->forward(norm1->forward(x), layout), layout);
  return h + drop_path->forward(mlp->forward(norm2->forward(h)), layout);
}

}  // namespace glance::nn
