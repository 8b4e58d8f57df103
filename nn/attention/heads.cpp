#include "nn/attention/heads.h"

#include <stdexcept>

namespace glance::nn {

QKV project_qkv(const Linear& qkv, const Tensor& x, int64_t heads) {
  const int64_t n = x.size(0), dim = x.size(1);
  if (heads <= 0 || dim % heads != 0) {
    throw std::invalid_argument("project_qkv: width " + std::to_string(dim) + " is not divisible by " +
                                std::to_string(heads) + " heads");
  }
  // [N, 3D] -> [N, 3, H, d] -> [3, H, N, d]; contiguous so each of q, k, v is a dense [H, N, d] block.
  Tensor packed = contiguous(permute(reshape(qkv.forward(x), {n, 3, heads, dim / heads}), {1, 2, 0, 3}));
  return {select(packed, 0, 0), select(packed, 0, 1), select(packed, 0, 2)};
}

Tensor split_heads(const Tensor& x, int64_t heads) {
  const int64_t n = x.size(0), dim = x.size(1);
  if (heads <= 0 || dim % heads != 0) {
    throw std::invalid_argument("split_heads: width " + std::to_string(dim) + " is not divisible by " +
                                std::to_string(heads) + " heads");
  }
  return contiguous(permute(reshape(x, {n, heads, dim / heads}), {1, 0, 2}));
}

Tensor merge_heads(const Tensor& o) {
  return reshape(permute(o, {1, 0, 2}), {o.size(1), o.size(0) * o.size(2)});
}

}  // namespace glance::nn
