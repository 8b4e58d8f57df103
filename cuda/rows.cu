// CudaBackend, part 7: kernels over whole rows of a contiguous [rows, C] tensor: softmax and log-softmax, their
// backward, and layer norm forward and backward.
//
// Each row is owned by a "row group" (device_utils.cuh): a warp for rows up to 1024 elements (8 rows per block
// of 32 x 8 threads), the whole 256-thread block for longer rows. Within a row, thread `lane` handles elements
// lane, lane + group size, ... (neighbouring threads read neighbouring elements: coalesced), keeps a partial
// result in a register, and the group combines the partials with warp shuffles (plus one step through shared
// memory in block mode). A row is read two or three times (max, sum, write); after the first pass it is in L1/L2.
//
// Accumulation: in float for float32 rows (each thread sums C / 32 or C / 256 elements, then a tree), in
// double for float64 rows. The CPU sums in double, so the two agree to float32 precision, not bit for bit.
//
// Walkthrough of softmax for one row x[0..C) (docs/08-cuda.md shows it step by step):
//   m = max_j x_j            thread-local max over its elements, then group max (NaN never wins, as the CPU)
//   s = sum_j exp(x_j - m)   thread-local sums, then group sum; every exp is in (0, 1], nothing overflows
//   y_j = exp(x_j - m) / s   (log: y_j = (x_j - m) - log s)
#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <string>

#include "cuda/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"
#include "cuda/layer_norm_row.cuh"

namespace glance::cuda {

namespace {

void check_rows(const Tensor& t, const char* what) {
  require_cuda(t, what);
  if (t.dim() != 2 || !t.is_contiguous()) {
    throw std::invalid_argument(std::string("cuda ") + what + ": expected a contiguous [rows, C] tensor, got " +
                                shape_str(t.shape()));
  }
}

// ---- softmax ----
template <typename T, bool kBlock>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t C, bool log) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> g;
  for (int64_t r = g.first_row(); r < rows; r += g.row_step()) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    Acc m = -infinity<Acc>();
    for (int64_t j = g.lane(); j < C; j += g.size()) {
      const Acc v = Acc(xr[j]);
      m = v > m ? v : m;
    }
    m = g.reduce(m, MaxIgnoringNanOp{}, smem);
    Acc s = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) s += dexp(Acc(xr[j]) - m);
    s = g.reduce(s, AddOp{}, smem);
    if (log) {
      const Acc log_s = dlog(s);
      for (int64_t j = g.lane(); j < C; j += g.size()) yr[j] = T((Acc(xr[j]) - m) - log_s);  // x - m first: exact near the max
    } else {
      const Acc inv = Acc(1) / s;
      for (int64_t j = g.lane(); j < C; j += g.size()) yr[j] = T(dexp(Acc(xr[j]) - m) * inv);
    }
  }
}

// ---- softmax backward ----
// softmax: dx = y * (dy - s), s = sum(dy * y);  log_softmax: dx = dy - exp(y) * s, s = sum(dy).
template <typename T, bool kBlock>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t C, bool log) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> g;
  for (int64_t r = g.first_row(); r < rows; r += g.row_step()) {
    const T* yr = y + r * C;
    const T* gr = dy + r * C;
    T* dr = dx + r * C;
    Acc s = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) s += log ? Acc(gr[j]) : Acc(gr[j]) * Acc(yr[j]);
    s = g.reduce(s, AddOp{}, smem);
    const T st = T(s);
    for (int64_t j = g.lane(); j < C; j += g.size()) {
      dr[j] = log ? T(gr[j] - dexp(yr[j]) * st) : T(yr[j] * (gr[j] - st));
    }
  }
}

// ---- layer norm forward ----
// Per row: mean, var = mean((x - mean)^2) (biased; two passes, for accuracy), rstd = 1/sqrt(var + eps),
// out = (x - mean) * rstd * weight + bias. weight and bias may be null (no affine).
template <typename T, bool kBlock>
__global__ void layer_norm_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                                          int64_t C, double eps) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> g;
  for (int64_t r = g.first_row(); r < rows; r += g.row_step()) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    Acc s = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) s += Acc(xr[j]);
    s = g.reduce(s, AddOp{}, smem);
    finish_layer_norm_row(g, xr, s, w, b, yr, mean + r, rstd + r, C, eps, smem);
  }
}

// ---- layer norm backward: dx ----
// With xhat = (x - mean) * rstd and g = dy * weight (the gradient reaching xhat):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))   per row
template <typename T, bool kBlock>
__global__ void layer_norm_backward_kernel(const T* dy, const T* x, const T* mean, const T* rstd, const T* w, T* dx,
                                           int64_t rows, int64_t C) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> grp;
  for (int64_t r = grp.first_row(); r < rows; r += grp.row_step()) {
    const T* xr = x + r * C;
    const T* dyr = dy + r * C;
    T* dxr = dx + r * C;
    const T m = mean[r], rs = rstd[r];
    Acc sum_g = 0, sum_gx = 0;
    for (int64_t j = grp.lane(); j < C; j += grp.size()) {
      const T g = w ? dyr[j] * w[j] : dyr[j];
      sum_g += Acc(g);
      sum_gx += Acc(g * ((xr[j] - m) * rs));
    }
    sum_g = grp.reduce(sum_g, AddOp{}, smem);
    sum_gx = grp.reduce(sum_gx, AddOp{}, smem);
    const T mean_g = C > 0 ? T(sum_g / Acc(C)) : T(0);
    const T mean_gx = C > 0 ? T(sum_gx / Acc(C)) : T(0);
    for (int64_t j = grp.lane(); j < C; j += grp.size()) {
      const T g = w ? dyr[j] * w[j] : dyr[j];
      const T xhat = (xr[j] - m) * rs;
      dxr[j] = rs * (g - mean_g - xhat * mean_gx);
    }
  }
}

// ---- layer norm backward: dweight and dbias, column sums over the rows ----
//   dweight[c] = sum_r dy[r, c] * xhat[r, c],   dbias[c] = sum_r dy[r, c]
// Pass 1: blocks of 32 columns x 8 row lanes; block (bx, slice) covers columns bx*32 .. +32 and the rows of its
// slice; thread (tx, ty) walks rows ty, ty+8, ... of the slice for column bx*32+tx (a warp reads 32 neighbouring
// columns of one row: coalesced). The 8 row lanes are combined through shared memory and written as the
// partial result of (slice, column). Pass 2: one thread per column adds its slices in order. Slices depend on
// the row count only (deterministic).
constexpr int kColTile = 32, kRowLanes = 8;

template <typename T>
__global__ void layer_norm_param_grads_partial(const T* dy, const T* x, const T* mean, const T* rstd,
                                               row_acc_t<T>* pw, row_acc_t<T>* pb, int64_t rows, int64_t C,
                                               int64_t rows_per_slice) {
  using Acc = row_acc_t<T>;
  __shared__ Acc sw[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];  // +1: no bank conflicts
  const int64_t c = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t slice = blockIdx.y;
  const int64_t r0 = slice * rows_per_slice, r1 = min(rows, r0 + rows_per_slice);
  Acc aw = 0, ab = 0;
  if (c < C) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const T g = dy[r * C + c];
      aw += Acc(g * ((x[r * C + c] - mean[r]) * rstd[r]));
      ab += Acc(g);
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    for (int k = 1; k < kRowLanes; ++k) {
      aw += sw[k][threadIdx.x];
      ab += sb[k][threadIdx.x];
    }
    pw[slice * C + c] = aw;
    pb[slice * C + c] = ab;
  }
}

template <typename T>
__global__ void layer_norm_param_grads_final(const row_acc_t<T>* pw, const row_acc_t<T>* pb, T* dw, T* db,
                                             int64_t slices, int64_t C) {
  using Acc = row_acc_t<T>;
  for (int64_t c = global_thread_id(); c < C; c += global_thread_count()) {
    Acc aw = 0, ab = 0;
    for (int64_t s = 0; s < slices; ++s) {
      aw += pw[s * C + c];
      ab += pb[s * C + c];
    }
    if (dw) dw[c] = T(aw);
    if (db) db[c] = T(ab);
  }
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

template <typename T>
void check_vector(const Tensor& t, int64_t C, const char* what) {
  if (!t.defined()) return;
  require_cuda(t, what);
  t.check_dtype(dtype_of<T>::value, what);
  if (t.numel() != C || !t.is_contiguous()) {
    throw std::invalid_argument(std::string("cuda ") + what + ": expected a contiguous [" + std::to_string(C) +
                                "] tensor, got " + shape_str(t.shape()));
  }
}

}  // namespace

void CudaBackend::softmax(const Tensor& out, const Tensor& in, bool log) {
  check_rows(in, "softmax");
  check_rows(out, "softmax");
  GLANCE_DISPATCH_FLOAT(in.dtype(), "cuda softmax", T, {
    out.check_dtype(in.dtype(), "cuda softmax (out)");
    const int64_t rows = in.shape()[0], C = in.shape()[1];
    const T* x = static_cast<const T*>(in.raw_data());
    T* y = static_cast<T*>(out.raw_data());
    launch_rows(rows, C, [&](auto block, unsigned grid) {
      softmax_kernel<T, decltype(block)::value><<<grid, row_block()>>>(x, y, rows, C, log);
    });
  });
}

void CudaBackend::softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) {
  check_rows(dx, "softmax_backward");
  check_rows(y, "softmax_backward");
  check_rows(dy, "softmax_backward");
  if (y.shape() != dy.shape() || dx.shape() != y.shape()) {
    throw std::invalid_argument("cuda softmax_backward: shapes differ: " + shape_str(y.shape()) + " and " +
                                shape_str(dy.shape()));
  }
  GLANCE_DISPATCH_FLOAT(y.dtype(), "cuda softmax_backward", T, {
    dy.check_dtype(y.dtype(), "cuda softmax_backward (dy)");
    dx.check_dtype(y.dtype(), "cuda softmax_backward (dx)");
    const int64_t rows = y.shape()[0], C = y.shape()[1];
    const T* py = static_cast<const T*>(y.raw_data());
    const T* pdy = static_cast<const T*>(dy.raw_data());
    T* pdx = static_cast<T*>(dx.raw_data());
    launch_rows(rows, C, [&](auto block, unsigned grid) {
      softmax_backward_kernel<T, decltype(block)::value><<<grid, row_block()>>>(py, pdy, pdx, rows, C, log);
    });
  });
}

void CudaBackend::layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                                     const Tensor& weight, const Tensor& bias, double eps) {
  check_rows(x, "layer_norm");
  check_rows(out, "layer_norm");
  const int64_t rows = x.shape()[0], C = x.shape()[1];
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cuda layer_norm", T, {
    check_vector<T>(mean, rows, "layer_norm (mean)");
    check_vector<T>(rstd, rows, "layer_norm (rstd)");
    check_vector<T>(weight, C, "layer_norm (weight)");
    check_vector<T>(bias, C, "layer_norm (bias)");
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pw = data_or_null<const T>(weight);
    const T* pb = data_or_null<const T>(bias);
    T* py = static_cast<T*>(out.raw_data());
    T* pm = static_cast<T*>(mean.raw_data());
    T* ps = static_cast<T*>(rstd.raw_data());
    launch_rows(rows, C, [&](auto block, unsigned grid) {
      layer_norm_forward_kernel<T, decltype(block)::value><<<grid, row_block()>>>(px, pw, pb, py, pm, ps, rows, C, eps);
    });
  });
}

void CudaBackend::layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                                      const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) {
  check_rows(x, "layer_norm_backward");
  check_rows(dy, "layer_norm_backward");
  check_rows(dx, "layer_norm_backward");
  const int64_t rows = x.shape()[0], C = x.shape()[1];
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cuda layer_norm_backward", T, {
    using Acc = row_acc_t<T>;
    check_vector<T>(mean, rows, "layer_norm_backward (mean)");
    check_vector<T>(rstd, rows, "layer_norm_backward (rstd)");
    check_vector<T>(weight, C, "layer_norm_backward (weight)");
    check_vector<T>(dweight, C, "layer_norm_backward (dweight)");
    check_vector<T>(dbias, C, "layer_norm_backward (dbias)");
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pdy = static_cast<const T*>(dy.raw_data());
    const T* pm = static_cast<const T*>(mean.raw_data());
    const T* ps = static_cast<const T*>(rstd.raw_data());
    const T* pw = data_or_null<const T>(weight);
    T* pdx = static_cast<T*>(dx.raw_data());
    launch_rows(rows, C, [&](auto block, unsigned grid) {
      layer_norm_backward_kernel<T, decltype(block)::value><<<grid, row_block()>>>(pdy, px, pm, ps, pw, pdx, rows, C);
    });
    if ((dweight.defined() || dbias.defined()) && C > 0) {
      if (rows == 0) {  // sums over no rows
        if (dweight.defined()) fill(dweight, 0.0);
        if (dbias.defined()) fill(dbias, 0.0);
      } else {
        // About 256 rows per slice, at most 256 slices.
        const int64_t slices = std::min<int64_t>(256, (rows + 255) / 256);
        const int64_t rows_per_slice = (rows + slices - 1) / slices;
        DeviceBuffer part_w(size_t(slices * C) * sizeof(Acc)), part_b(size_t(slices * C) * sizeof(Acc));
        const dim3 grid(static_cast<unsigned>((C + kColTile - 1) / kColTile), static_cast<unsigned>(slices));
        layer_norm_param_grads_partial<T><<<grid, dim3(kColTile, kRowLanes)>>>(
            pdy, px, pm, ps, part_w.as<Acc>(), part_b.as<Acc>(), rows, C, rows_per_slice);
        GLANCE_CUDA_CHECK_LAUNCH();
        layer_norm_param_grads_final<T><<<blocks_for(C), kThreads>>>(part_w.as<Acc>(), part_b.as<Acc>(),
                                                                     data_or_null<T>(dweight), data_or_null<T>(dbias),
                                                                     slices, C);
        GLANCE_CUDA_CHECK_LAUNCH();
      }
    }
  });
}

}  // namespace glance::cuda
