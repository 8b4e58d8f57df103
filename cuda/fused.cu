// The fused kernels of fused.h. bias_gelu and its backward are functors on the elementwise engine (the bias a
// stride-0 view, so a [rows, C] + [C] pair coalesces to one 2-D layout); the other three are kernels of their
// own, written like the row kernels of rows.cu.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/layer_norm_row.cuh"
#include "cuda/fused.h"
#include "tensor/ops.h"

namespace glance::cuda {

namespace {

void check_float_cuda(const Tensor& t, const char* what) {
  require_cuda(t, what);
  if (!is_floating(t.dtype())) {
    throw std::invalid_argument(std::string("cuda ") + what + ": expected float32 or float64, got " +
                                dtype_name(t.dtype()));
  }
}

void check_same(const Tensor& t, const Tensor& like, const char* what) {
  check_float_cuda(t, what);
  if (t.shape() != like.shape() || t.dtype() != like.dtype()) {
    throw std::invalid_argument(std::string("cuda ") + what + ": expected " + dtype_name(like.dtype()) + " " +
                                shape_str(like.shape()) + ", got " + dtype_name(t.dtype()) + " " +
                                shape_str(t.shape()));
  }
}

// bias [C] as a view of x's shape: stride 1 on the last axis, 0 elsewhere.
Tensor bias_as(const Tensor& bias, const Tensor& x, const char* what) {
  check_float_cuda(bias, what);
  const int64_t C = x.dim() > 0 ? x.shape().back() : 1;
  if (x.dim() == 0 || bias.dim() != 1 || bias.shape()[0] != C || bias.dtype() != x.dtype()) {
    throw std::invalid_argument(std::string("cuda ") + what + ": expected a bias of " + dtype_name(x.dtype()) + " [" +
                                std::to_string(C) + "] for x " + shape_str(x.shape()) + ", got " +
                                dtype_name(bias.dtype()) + " " + shape_str(bias.shape()));
  }
  Strides strides(x.dim(), 0);
  strides.back() = bias.strides()[0];
  return bias.as_strided(x.shape(), strides, bias.offset());
}

// ---- bias + GELU ----
template <typename T>
__device__ __forceinline__ T gelu_erf(T z) {
  return T(0.5) * z * (T(1) + derf(z * T(0.7071067811865476)));
}

template <typename T>
struct BiasGeluFn {
  __device__ T operator()(T x, T b) const { return gelu_erf(T(x + b)); }
};

template <typename T>
struct BiasGeluBackwardFn {
  // dy * (Phi(z) + z phi(z)) at z = x + b (the same formula as BinaryOp::GeluErfGrad).
  __device__ T operator()(T dy, T x, T b) const {
    const T z = x + b;
    const T cdf = T(0.5) * (T(1) + derf(z * T(0.7071067811865476)));
    return dy * (cdf + z * T(0.3989422804014327) * dexp(T(-0.5) * z * z));
  }
};

// ---- residual + layer norm: one row group per row ----
template <typename T, bool kBlock>
__global__ void residual_layer_norm_kernel(const T* x, const T* res, const T* w, const T* b, T* out, T* sum, T* mean,
                                           T* rstd, int64_t rows, int64_t C, double eps) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> g;
  for (int64_t r = g.first_row(); r < rows; r += g.row_step()) {
    const T* xr = x + r * C;
    const T* rr = res + r * C;
    T* sr = sum + r * C;
    T* yr = out + r * C;
    Acc s = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) {
      const T v = xr[j] + rr[j];
      sr[j] = v;  // each thread reads back only what it wrote itself: no barrier needed
      s += Acc(v);
    }
    s = g.reduce(s, AddOp{}, smem);
    finish_layer_norm_row(g, static_cast<const T*>(sr), s, w, b, yr, mean + r, rstd + r, C, eps, smem);
  }
}

// ---- softmax + cross-entropy: one row group per row ----
//   m = max x, s = sum exp(x - m), lse = m + log s, log p_j = x_j - lse
//   loss = (1 - ls) (lse - x_y) - ls (mean(x) - lse)
//   dlogits_j = exp(x_j - m) / s - (1 - ls) [j == y] - ls / C
template <typename T, bool kBlock>
__global__ void softmax_cross_entropy_kernel(const T* logits, const int64_t* labels, T* loss, T* dlogits,
                                             int64_t rows, int64_t C, double smoothing) {
  using Acc = row_acc_t<T>;
  __shared__ Acc smem[RowGroup<kBlock>::kWarps];
  const RowGroup<kBlock> g;
  const Acc ls = Acc(smoothing);
  for (int64_t r = g.first_row(); r < rows; r += g.row_step()) {
    const T* xr = logits + r * C;
    T* dr = dlogits + r * C;
    const int64_t y = labels[r];
    const bool valid = y >= 0 && y < C;
    Acc m = -infinity<Acc>(), sx = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) {
      const Acc v = Acc(xr[j]);
      m = v > m ? v : m;
      sx += v;
    }
    m = g.reduce(m, MaxIgnoringNanOp{}, smem);
    sx = g.reduce(sx, AddOp{}, smem);
    Acc s = 0;
    for (int64_t j = g.lane(); j < C; j += g.size()) s += dexp(Acc(xr[j]) - m);
    s = g.reduce(s, AddOp{}, smem);
    const Acc lse = m + dlog(s), inv = Acc(1) / s;
    const Acc nan = std::numeric_limits<Acc>::quiet_NaN();
    if (g.lane() == 0) {
      loss[r] = valid ? T((Acc(1) - ls) * (lse - Acc(xr[y])) - ls * (sx / Acc(C) - lse)) : T(nan);
    }
    for (int64_t j = g.lane(); j < C; j += g.size()) {
      const Acc p = dexp(Acc(xr[j]) - m) * inv;
      const Acc d = p - (j == y ? Acc(1) - ls : Acc(0)) - ls / Acc(C);
      dr[j] = valid ? T(d) : T(nan);
    }
  }
}

// ---- AdamW: one thread per element, the update of nn/optim/adamw.cpp in the same order ----
template <typename T>
struct AdamWScalars {
  T decay;          // 1 - lr * weight_decay
  bool apply_decay;
  T b1, one_minus_b1, b2, one_minus_b2;
  T correction2;    // 1 - b2^t
  T eps;
  T step_size;      // -lr / (1 - b1^t)
};

template <typename T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, AdamWScalars<T> s) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    const T gi = g[i];
    T pi = p[i];
    if (s.apply_decay) pi = pi * s.decay;
    const T mi = m[i] * s.b1 + gi * s.one_minus_b1;
    const T vi = v[i] * s.b2 + gi * gi * s.one_minus_b2;
    const T denom = dsqrt(vi / s.correction2) + s.eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + (mi / denom) * s.step_size;
  }
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

}  // namespace

Tensor bias_gelu(const Tensor& x, const Tensor& bias) {
  check_float_cuda(x, "bias_gelu (x)");
  const Tensor b = bias_as(bias, x, "bias_gelu (bias)");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cuda bias_gelu", T,
                        { launch_map<T, T, T>("bias_gelu", BiasGeluFn<T>{}, out, {x, b}); });
  return out;
}

Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias) {
  check_float_cuda(x, "bias_gelu_backward (x)");
  check_same(dy, x, "bias_gelu_backward (dy)");
  const Tensor b = bias_as(bias, x, "bias_gelu_backward (bias)");
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cuda bias_gelu_backward", T,
                        { launch_map<T, T, T, T>("bias_gelu_backward", BiasGeluBackwardFn<T>{}, dx, {dy, x, b}); });
  return dx;
}

ResidualLayerNormResult residual_layer_norm(const Tensor& x_in, const Tensor& residual_in, const Tensor& weight,
                                            const Tensor& bias, double eps) {
  check_float_cuda(x_in, "residual_layer_norm (x)");
  check_same(residual_in, x_in, "residual_layer_norm (residual)");
  if (x_in.dim() == 0) throw std::invalid_argument("cuda residual_layer_norm: x needs at least one axis");
  const int64_t C = x_in.shape().back();
  const int64_t rows = C > 0 ? x_in.numel() / C : 0;
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->defined()) continue;
    check_float_cuda(*t, "residual_layer_norm (weight/bias)");
    if (t->shape() != Shape{C} || t->dtype() != x_in.dtype() || !t->is_contiguous()) {
      throw std::invalid_argument("cuda residual_layer_norm: weight/bias must be contiguous " +
                                  std::string(dtype_name(x_in.dtype())) + " [" + std::to_string(C) + "], got " +
                                  shape_str(t->shape()));
    }
  }
  const Tensor x = ops::contiguous(x_in), res = ops::contiguous(residual_in);
  ResidualLayerNormResult r;
  r.out = Tensor::empty(x.shape(), x.dtype(), x.device());
  r.sum = Tensor::empty(x.shape(), x.dtype(), x.device());
  r.mean = Tensor::empty({rows}, x.dtype(), x.device());
  r.rstd = Tensor::empty({rows}, x.dtype(), x.device());
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cuda residual_layer_norm", T, {
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pr = static_cast<const T*>(res.raw_data());
    const T* pw = data_or_null<T>(weight);
    const T* pb = data_or_null<T>(bias);
    T* po = static_cast<T*>(r.out.raw_data());
    T* ps = static_cast<T*>(r.sum.raw_data());
    T* pm = static_cast<T*>(r.mean.raw_data());
    T* pv = static_cast<T*>(r.rstd.raw_data());
    launch_rows(rows, C, [&](auto block, unsigned grid) {
      residual_layer_norm_kernel<T, decltype(block)::value>
          <<<grid, row_block()>>>(px, pr, pw, pb, po, ps, pm, pv, rows, C, eps);
    });
  });
  return r;
}

SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits_in, const Tensor& labels_in,
                                                double label_smoothing) {
  check_float_cuda(logits_in, "softmax_cross_entropy (logits)");
  if (logits_in.dim() != 2 || labels_in.dim() != 1 || labels_in.shape()[0] != logits_in.shape()[0]) {
    throw std::invalid_argument("cuda softmax_cross_entropy: expected logits [N, C] and labels [N], got " +
                                shape_str(logits_in.shape()) + " and " + shape_str(labels_in.shape()));
  }
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
    throw std::invalid_argument("cuda softmax_cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(label_smoothing));
  }
  if (labels_in.dtype() != DType::Int64 && labels_in.dtype() != DType::Int32) {
    throw std::invalid_argument(std::string("cuda softmax_cross_entropy: labels must be int64 or int32, got ") +
                                dtype_name(labels_in.dtype()));
  }
  const Tensor logits = ops::contiguous(logits_in);
  const Tensor labels = ops::contiguous(ops::to_dtype(ops::to_device(labels_in, logits.device()), DType::Int64));
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  SoftmaxCrossEntropyResult r;
  r.loss = Tensor::empty({N}, logits.dtype(), logits.device());
  r.dlogits = Tensor::empty({N, C}, logits.dtype(), logits.device());
  if (C == 0) {  // no classes: nothing is a valid label
    backend_instance()->fill(r.loss, std::numeric_limits<double>::quiet_NaN());
    return r;
  }
  GLANCE_DISPATCH_FLOAT(logits.dtype(), "cuda softmax_cross_entropy", T, {
    const T* px = static_cast<const T*>(logits.raw_data());
    const int64_t* py = static_cast<const int64_t*>(labels.raw_data());
    T* pl = static_cast<T*>(r.loss.raw_data());
    T* pd = static_cast<T*>(r.dlogits.raw_data());
    launch_rows(N, C, [&](auto block, unsigned grid) {
      softmax_cross_entropy_kernel<T, decltype(block)::value>
          <<<grid, row_block()>>>(px, py, pl, pd, N, C, label_smoothing);
    });
  });
  return r;
}

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWParams& hp) {
  check_float_cuda(param, "adamw_step (param)");
  check_same(grad, param, "adamw_step (grad)");
  check_same(m, param, "adamw_step (m)");
  check_same(v, param, "adamw_step (v)");
  for (const Tensor* t : {&param, &grad, &m, &v}) {
    if (!t->is_contiguous()) throw std::invalid_argument("cuda adamw_step: tensors must be contiguous");
  }
  if (hp.step < 1) throw std::invalid_argument("cuda adamw_step: step counts from 1, got " + std::to_string(hp.step));
  const int64_t n = param.numel();
  if (n == 0) return;
  const double correction1 = 1.0 - std::pow(hp.beta1, static_cast<double>(hp.step));
  const double correction2 = 1.0 - std::pow(hp.beta2, static_cast<double>(hp.step));
  GLANCE_DISPATCH_FLOAT(param.dtype(), "cuda adamw_step", T, {
    // The scalars converted to T exactly where the CPU's ops convert them (ops::binary with a double scalar).
    AdamWScalars<T> s;
    s.decay = T(1.0 - hp.lr * hp.weight_decay);
    s.apply_decay = hp.weight_decay != 0.0;
    s.b1 = T(hp.beta1);
    s.one_minus_b1 = T(1.0 - hp.beta1);
    s.b2 = T(hp.beta2);
    s.one_minus_b2 = T(1.0 - hp.beta2);
    s.correction2 = T(correction2);
    s.eps = T(hp.eps);
    s.step_size = T(-hp.lr / correction1);
    adamw_kernel<T><<<blocks_for(n), kThreads>>>(static_cast<T*>(param.raw_data()),
                                                 static_cast<const T*>(grad.raw_data()), static_cast<T*>(m.raw_data()),
                                                 static_cast<T*>(v.raw_data()), n, s);
    GLANCE_CUDA_CHECK_LAUNCH();
  });
}

// ---- the Backend's fused ops (tensor/backend.h) are the kernels above ----
Tensor CudaBackend::bias_gelu(const Tensor& x, const Tensor& bias) { return cuda::bias_gelu(x, bias); }
Tensor CudaBackend::bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias) {
  return cuda::bias_gelu_backward(dy, x, bias);
}
ResidualLayerNormResult CudaBackend::residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                         const Tensor& bias, double eps) {
  return cuda::residual_layer_norm(x, residual, weight, bias, eps);
}
SoftmaxCrossEntropyResult CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                             double label_smoothing) {
  return cuda::softmax_cross_entropy(logits, labels, label_smoothing);
}
void CudaBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                             const AdamWParams& params) {
  cuda::adamw_step(param, grad, m, v, params);
}

}  // namespace glance::cuda
