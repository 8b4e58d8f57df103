// CpuBackend, part 5: kernels that work on whole rows of a contiguous [rows, C] tensor: softmax and
// log-softmax, and layer norm forward and backward. Rows are independent, so they are shared among threads;
// sums along a row are taken in double (cheap next to the exp, and float32 rows of 50k logits stay exact
// to the last bit that matters).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/fast_math.h"
#include "tensor/cpu/row_kernels.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"

namespace glance {

namespace {

void check_rows(const Tensor& t, const char* what) {
  if (t.dim() != 2 || !t.is_contiguous()) {
    throw std::invalid_argument(std::string("cpu ") + what + ": expected a contiguous [rows, C] tensor, got " +
                                shape_str(t.shape()));
  }
}

bool parallel_for(int64_t rows, int64_t C) { return rows > 1 && rows * C >= cpu::kParallelThreshold; }

// ---- softmax ----
// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), with m the row max: subtracting m changes nothing
// mathematically but keeps every exp in (0, 1], so nothing overflows. log_softmax = x - m - log(sum).
template <typename T>
void softmax_typed(const Tensor& out, const Tensor& in, bool log) {
  const int64_t rows = in.shape()[0], C = in.shape()[1];
  const T* x = in.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for schedule(static) if (parallel_for(rows, C))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    // The row max, ignoring NaN (a NaN anywhere still makes the whole row NaN below, through exp and
    // the sum), written as a plain compare-select so that it vectorises.
    T lane[8];
    std::fill(lane, lane + 8, -std::numeric_limits<T>::infinity());
    int64_t j0 = 0;
    for (; j0 + 8 <= C; j0 += 8) {
      for (int k = 0; k < 8; ++k) lane[k] = xr[j0 + k] > lane[k] ? xr[j0 + k] : lane[k];
    }
    for (; j0 < C; ++j0) lane[0] = xr[j0] > lane[0] ? xr[j0] : lane[0];
    T m = lane[0];
    for (int k = 1; k < 8; ++k) m = lane[k] > m ? lane[k] : m;
    if (log) {
      const double sum = cpu::lane_sum(C, [&](int64_t j) { return double(std::exp(xr[j] - m)); });
      const T log_sum = T(std::log(sum));
      for (int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - m) - log_sum;  // x - m first: exact near the max
    } else {
      // exp in a loop of its own (vectorised for float), then the sum in double with 8 partial sums.
      if constexpr (std::is_same_v<T, float>) {
        for (int64_t j = 0; j < C; ++j) yr[j] = cpu::fast_exp(xr[j] - m);
      } else {
        for (int64_t j = 0; j < C; ++j) yr[j] = std::exp(xr[j] - m);
      }
      const double sum = cpu::lane_sum(C, [&](int64_t j) { return double(yr[j]); });
      const T scale = T(1.0 / sum);
      for (int64_t j = 0; j < C; ++j) yr[j] *= scale;
    }
  }
}

// ---- softmax backward ----
// softmax: dx = y * (dy - s), s = sum(dy * y);  log_softmax: dx = dy - exp(y) * s, s = sum(dy).
template <typename T>
void softmax_backward_typed(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) {
  const int64_t rows = y.shape()[0], C = y.shape()[1];
  const T *py = y.data<T>(), *pg = dy.data<T>();
  T* pd = dx.data<T>();
#pragma omp parallel for schedule(static) if (parallel_for(rows, C))
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = py + r * C, *gr = pg + r * C;
    T* dr = pd + r * C;
    if (log) {
      const T s = T(cpu::lane_sum(C, [&](int64_t j) { return double(gr[j]); }));
      for (int64_t j = 0; j < C; ++j) dr[j] = gr[j] - std::exp(yr[j]) * s;
    } else {
      const T s = T(cpu::lane_sum(C, [&](int64_t j) { return double(gr[j]) * double(yr[j]); }));
      for (int64_t j = 0; j < C; ++j) dr[j] = yr[j] * (gr[j] - s);
    }
  }
}

// ---- layer norm ----
// Per row (cpu::layer_norm_row, row_kernels.h): mean, var = mean((x - mean)^2) (biased, two passes for
// accuracy), rstd = 1/sqrt(var + eps), out = (x - mean) * rstd * weight + bias.
template <typename T>
void layer_norm_forward_typed(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                              const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t rows = x.shape()[0], C = x.shape()[1];
  const T* px = x.data<T>();
  T* py = out.data<T>();
  T* pm = mean.data<T>();
  T* ps = rstd.data<T>();
  const T* w = weight.defined() ? weight.data<T>() : nullptr;
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (parallel_for(rows, C))
  for (int64_t r = 0; r < rows; ++r) cpu::layer_norm_row(px + r * C, py + r * C, C, w, b, eps, pm + r, ps + r);
}

// With xhat = (x - mean) * rstd and g = dy * weight (the gradient reaching xhat):
//   dx      = rstd * (g - mean(g) - xhat * mean(g * xhat))      per row
//   dweight = sum over rows of dy * xhat,   dbias = sum over rows of dy
template <typename T>
void layer_norm_backward_typed(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                               const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) {
  const int64_t rows = x.shape()[0], C = x.shape()[1];
  const T* px = x.data<T>();
  const T* pdy = dy.data<T>();
  const T* pm = mean.data<T>();
  const T* ps = rstd.data<T>();
  const T* w = weight.defined() ? weight.data<T>() : nullptr;
  T* pdx = dx.data<T>();
#pragma omp parallel for schedule(static) if (parallel_for(rows, C))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = px + r * C;
    const T* dyr = pdy + r * C;
    T* dxr = pdx + r * C;
    const T m = pm[r], rs = ps[r];
    const double sum_g = cpu::lane_sum(C, [=](int64_t j) { return double(w ? dyr[j] * w[j] : dyr[j]); });
    const double sum_gx =
        cpu::lane_sum(C, [=](int64_t j) { return double((w ? dyr[j] * w[j] : dyr[j]) * ((xr[j] - m) * rs)); });
    const T mean_g = C > 0 ? T(sum_g / double(C)) : T(0);
    const T mean_gx = C > 0 ? T(sum_gx / double(C)) : T(0);
    for (int64_t j = 0; j < C; ++j) {
      const T g = w ? dyr[j] * w[j] : dyr[j];
      const T xhat = (xr[j] - m) * rs;
      dxr[j] = rs * (g - mean_g - xhat * mean_gx);
    }
  }
  if (!dweight.defined() && !dbias.defined()) return;
  // Column sums: each work item owns a block of columns and walks all the rows (no shared partial
  // buffers, no races, and the same result for any thread count). Vectorised along the block.
  // Blocks wide enough that each row is read as one long stretch (prefetch-friendly), up to 8 of them.
  constexpr int64_t kMaxColumns = 512;
  const int64_t columns = std::clamp<int64_t>((C / 8 + 15) / 16 * 16, 64, kMaxColumns);
  T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
  T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
  const int64_t blocks = (C + columns - 1) / columns;
#pragma omp parallel for schedule(static) if (blocks > 1 && parallel_for(rows, C))
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * columns, width = std::min(columns, C - c0);
    double acc_w[kMaxColumns] = {}, acc_b[kMaxColumns] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * C + c0;
      const T* dyr = pdy + r * C + c0;
      const T m = pm[r], rs = ps[r];
      for (int64_t k = 0; k < width; ++k) {
        acc_w[k] += double(dyr[k] * ((xr[k] - m) * rs));
        acc_b[k] += double(dyr[k]);
      }
    }
    for (int64_t k = 0; k < width; ++k) {
      if (pdw) pdw[c0 + k] = T(acc_w[k]);
      if (pdb) pdb[c0 + k] = T(acc_b[k]);
    }
  }
}

}  // namespace

void CpuBackend::softmax(const Tensor& out, const Tensor& in, bool log) {
  const op_profile::Scope profile_scope(OpKind::Softmax);
  check_rows(in, "softmax");
  check_rows(out, "softmax");
  GLANCE_DISPATCH_FLOAT(in.dtype(), "cpu softmax", T, { softmax_typed<T>(out, in, log); });
}

void CpuBackend::softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) {
  const op_profile::Scope profile_scope(OpKind::Softmax);
  check_rows(dx, "softmax_backward");
  check_rows(y, "softmax_backward");
  check_rows(dy, "softmax_backward");
  if (y.shape() != dy.shape() || dx.shape() != y.shape()) {
    throw std::invalid_argument("cpu softmax_backward: shapes differ: " + shape_str(y.shape()) + " and " +
                                shape_str(dy.shape()));
  }
  GLANCE_DISPATCH_FLOAT(y.dtype(), "cpu softmax_backward", T, { softmax_backward_typed<T>(dx, y, dy, log); });
}

void CpuBackend::layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                                    const Tensor& weight, const Tensor& bias, double eps) {
  const op_profile::Scope profile_scope(OpKind::LayerNorm);
  check_rows(x, "layer_norm");
  check_rows(out, "layer_norm");
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cpu layer_norm", T,
                        { layer_norm_forward_typed<T>(out, mean, rstd, x, weight, bias, eps); });
}

void CpuBackend::layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                                     const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) {
  const op_profile::Scope profile_scope(OpKind::LayerNorm);
  check_rows(x, "layer_norm_backward");
  check_rows(dy, "layer_norm_backward");
  check_rows(dx, "layer_norm_backward");
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cpu layer_norm_backward", T,
                        { layer_norm_backward_typed<T>(dx, dweight, dbias, dy, x, mean, rstd, weight); });
}

}  // namespace glance
