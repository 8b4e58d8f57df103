// The pre-LN transformer block of ViT (names as in timm: norm1, attn, norm2, mlp):
//   x = x + drop_path(attn(norm1(x)))
//   x = x + drop_path(mlp(norm2(x)))
#pragma once
#include <memory>

#include "nn/attention/multi_head.h"
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
  std::string attention_kernel = "reference";
};

class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(const BlockConfig& config);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const;  // x [N_total, D]

  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadSelfAttention> attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<DropPath> drop_path;
};

}  // namespace glance::nn
