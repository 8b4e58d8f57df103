// "local": local space-time attention in blocked spatial windows (the local half of TimeSformer's
// "Sparse Local-Global" scheme, which its paper describes and its repository does not ship).
//
// Each token attends to the tokens of its clip whose (h, w) falls in the same `window` x `window`
// spatial window, in every frame:
//
//   group(token) = (h / window) * ceil(W' / window) + (w / window)
//   out = proj( softmax(q k^T / sqrt(d) restricted to the token's group) v )
//
// The paper does not say whether the windows slide or tile the frame; we tile (blocked windows), so
// this is plain softmax attention over groups and runs through grouped_attention with any kernel.
// Cost per token: T' * window^2 keys instead of T' * H' * W'.
//
// RLT: native. The group comes from each kept token's (h, w), so a window holds the kept tokens of its
// locations; on a dense batch it holds T' * window^2 tokens.
//
// Options: window (default 2).
//
// This file is the worked example of docs/11-write-your-own-attention.md.
#pragma once
#include <memory>

#include "nn/attention/layer.h"
#include "nn/linear.h"

namespace glance::nn {

class LocalWindowAttention : public AttentionLayer {
 public:
  explicit LocalWindowAttention(const AttentionConfig& config);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;  // [N, D] -> [N, D]

  int64_t dim, heads, window;
  std::string kernel;
  std::shared_ptr<Linear> qkv, proj;
};

std::shared_ptr<AttentionLayer> make_local_window_attention(const AttentionConfig& config);

}  // namespace glance::nn
