// The pre-LN transformer block of ViT (names as in timm: norm1, attn, norm2, mlp):
//   x = x + drop_path(attn(norm1(x)))
//   x = x + drop_path(mlp(norm2(x)))
// The attention is any registered design (nn/attention/registry.h); a design may bring its own residual
// structure (attn->update) or shrink the token set (attn->skip, attn->output_layout), see layer.h.
#pragma once
#include <map>
#include <memory>

#include "nn/attention/registry.h"
#include "nn/layer_norm.h"
#include "nn/mlp.h"

namespace glance::nn {

struct BlockConfig {
  int64_t dim = 192;
  int64_t heads = 3;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double drop = 0.0;        // dropout after attention's projection and inside the MLP
  double drop_path = 0.0;   // stochastic depth of this block
  double norm_eps = 1e-6;   // timm's ViT uses 1e-6
  std::string attention_kernel = "device";  // nn/attention/kernel.h: the device's own kernel
  std::string attention = "joint";                  // the design, by registered name
  Grid grid;                                        // the token grid of one clip (for designs that use it)
  std::map<std::string, double> attention_options;  // the design's own knobs
};

class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(const BlockConfig& config);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const;  // x [N_total, D] -> [N_out, D]
  // The layout of the block's output (the input layout, except in a stage that downsamples).
  TokenLayout output_layout(const TokenLayout& layout) const { return attn->output_layout(layout); }

  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<AttentionLayer> attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<DropPath> drop_path;
};

}  // namespace glance::nn
