// The second half of a layer norm row, shared by rows.cu's layer_norm_forward_kernel and fused.cu's
// residual_layer_norm_kernel (which differ only in how the row and its sum are made: read, or added from x and a
// residual and written out).
//
// Given the row src [C] of a row group g and s = sum(src) already reduced over the group:
//   mean = s / C, var = mean((src - mean)^2) (biased; a second pass over src, for accuracy),
//   rstd = 1 / sqrt(var + eps), out = (src - mean) * rstd * w + b   (w, b may be null: no affine).
// Each lane reads back only the elements it handled in the first pass (same j = lane, lane + size, ...), so a
// row that lane wrote itself needs no barrier.
#pragma once
#include <cstdint>

#include "cuda/device_utils.cuh"

namespace glance::cuda {

template <typename T, typename Acc, typename Group>
__device__ __forceinline__ void finish_layer_norm_row(const Group& g, const T* src, Acc s, const T* w, const T* b,
                                                      T* out, T* mean, T* rstd, int64_t C, double eps, Acc* smem) {
  const Acc mu = C > 0 ? s / Acc(C) : Acc(0);
  Acc ss = 0;
  for (int64_t j = g.lane(); j < C; j += g.size()) {
    const Acc d = Acc(src[j]) - mu;
    ss += d * d;
  }
  ss = g.reduce(ss, AddOp{}, smem);
  const Acc var = C > 0 ? ss / Acc(C) : Acc(0);
  const T m = T(mu), rs = T(Acc(1) / dsqrt(var + Acc(eps)));
  if (g.lane() == 0) {
    *mean = m;
    *rstd = rs;
  }
  for (int64_t j = g.lane(); j < C; j += g.size()) {
    T v = (src[j] - m) * rs;
    if (w) v *= w[j];
    if (b) v += b[j];
    out[j] = v;
  }
}

}  // namespace glance::cuda
