// Multi-head self-attention over a packed sequence (ViT's Attention, names as in timm: qkv, proj).
// Registered as the designs "joint" (the default) and "space_only".
//
//   x [N_total, D] --qkv--> [N_total, 3D] -> q, k, v [H, N_total, d]   (d = D / H)
//   o = kernel(q, k, v, layout, 1/sqrt(d))   [H, N_total, d]   (attention stays inside each clip)
//   out = proj(o as [N_total, D])
//
// "joint": each token attends to every token of its clip (ViT; TimeSformer's joint space-time).
// "space_only": each token attends to the tokens of its own frame (TimeSformer's space-only baseline),
// through grouped attention (nn/attention/grouped.h).
#pragma once
#include <memory>
#include <string>

#include "nn/attention/grouped.h"
#include "nn/attention/kernel.h"
#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

class MultiHeadSelfAttention : public AttentionLayer {
 public:
  MultiHeadSelfAttention(int64_t dim, int64_t heads, bool qkv_bias = true, const std::string& kernel = "device",
                         double proj_drop = 0.0, TokenGroup group = TokenGroup::Clip);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;
  void set_kernel(const std::string& name) override;  // a name of nn/attention/kernel.h: "device", "reference"...
  const std::string& kernel_name() const { return kernel_name_; }

  int64_t dim, heads, head_dim;
  TokenGroup group;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> proj_drop;

 private:
  std::string kernel_name_;
  AttentionKernel kernel_;
};

std::shared_ptr<AttentionLayer> make_joint_attention(const AttentionConfig& config);
std::shared_ptr<AttentionLayer> make_space_only_attention(const AttentionConfig& config);

}  // namespace glance::nn
