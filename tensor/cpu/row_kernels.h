// Per-row pieces shared by the row kernels (rows.cpp) and the fused kernels (fused.cpp), so that a fused kernel
// computes a row with exactly the arithmetic of the kernel it stands in for (the same bits, not just close).
#pragma once
#include <cmath>
#include <cstdint>

namespace glance::cpu {

// The sum of f(j) for j in [0, n), in double, with 8 independent partial sums: one running sum would be a
// chain of dependent adds that GCC may not reorder (without -ffast-math), 8 of them vectorise.
template <typename F>
double lane_sum(int64_t n, F f) {
  double lane[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) lane[k] += f(j + k);
  }
  for (; j < n; ++j) lane[0] += f(j);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

// Layer norm of one row x[0, C) into y: mean, var = mean((x - mean)^2) (biased, two passes for accuracy),
// rstd = 1/sqrt(var + eps), y = (x - mean) * rstd * w + b (w, b may be null: no affine). Returns the row's
// statistics through mean and rstd.
template <typename T>
void layer_norm_row(const T* xr, T* yr, int64_t C, const T* w, const T* b, double eps, T* mean, T* rstd) {
  const double s = lane_sum(C, [xr](int64_t j) { return double(xr[j]); });
  const double mu = C > 0 ? s / double(C) : 0.0;
  const double ss = lane_sum(C, [xr, mu](int64_t j) { return (xr[j] - mu) * (xr[j] - mu); });
  const double var = C > 0 ? ss / double(C) : 0.0;
  const T m = T(mu), rs = T(1.0 / std::sqrt(var + eps));
  *mean = m;
  *rstd = rs;
  for (int64_t j = 0; j < C; ++j) {
    T v = (xr[j] - m) * rs;
    if (w) v *= w[j];
    if (b) v += b[j];
    yr[j] = v;
  }
}

}  // namespace glance::cpu
