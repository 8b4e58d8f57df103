// Moving between token rows and attention heads, shared by every attention design.
//
//   x [N, D]  <->  [H, N, d]   with D = H * d (head h owns columns h*d .. h*d + d - 1)
#pragma once
#include "nn/linear.h"

namespace glance::nn {

struct QKV {
  Tensor q, k, v;  // each [H, N, d], contiguous
};

// x [N, D] -> qkv(x) [N, 3D] -> q, k, v [H, N, d] (timm's layout of the fused qkv projection).
QKV project_qkv(const Linear& qkv, const Tensor& x, int64_t heads);
Tensor split_heads(const Tensor& x, int64_t heads);  // [N, D] -> [H, N, d] (contiguous)
Tensor merge_heads(const Tensor& o);                 // [H, N, d] -> [N, H*d]

}  // namespace glance::nn
