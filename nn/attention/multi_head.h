// Multi-head self-attention over a packed sequence (ViT's Attention, names as in timm: qkv, proj).
//
//   x [N_total, D] --qkv--> [N_total, 3D] -> q, k, v [H, N_total, d]   (d = D / H)
//   o = kernel(q, k, v, layout, 1/sqrt(d))   [H, N_total, d]   (attention stays inside each clip)
//   out = proj(o as [N_total, D])
#pragma once
#include <memory>
#include <string>

#include "nn/attention/kernel.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

class MultiHeadSelfAttention : public Module {
 public:
  MultiHeadSelfAttention(int64_t dim, int64_t heads, bool qkv_bias = true, const std::string& kernel = "reference",
                         double proj_drop = 0.0);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const;
  void set_kernel(const std::string& name);  // e.g. "reference", later "tiled", "fused"
  const std::string& kernel_name() const { return kernel_name_; }

  int64_t dim, heads, head_dim;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> proj_drop;

 private:
  std::string kernel_name_;
  AttentionKernel kernel_;
};

}  // namespace glance::nn
