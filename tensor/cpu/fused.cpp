// CpuBackend, part 9: the fused ops (tensor/backend.h), each one pass over memory where the composition of
// primitives (the Backend's defaults, tensor/fused_default.cpp) makes several and writes every intermediate
// tensor out. The defaults stay the plain reference these are tested against (tests/tensor/test_cpu_fused.cpp).
//
//   bias_gelu            gelu_erf(x + b): the composition writes x + b, then reads it back for the GELU
//   bias_gelu_backward   dy * gelu_erf'(x + b): likewise x + b, then the gradient
//   residual_layer_norm  s = x + r, LN(s): s is written once and normalised while its row is in cache; the
//                        row arithmetic is layer norm's own (row_kernels.h), so the result is the same bits
//   softmax_cross_entropy  per row: the log-sum-exp, the loss and softmax - onehot, instead of ~15 small ops
//   adamw_step           one pass over p, g, m, v instead of ten, with no temporaries
//
// Each takes contiguous float32 or float64 tensors of one dtype (what nn gives it in training) and otherwise
// hands the call to the default composition. The elementwise ones compute each element with the arithmetic of
// the primitives they replace, in float32 for float32 (fast_erf, fast_exp as elementwise.cpp does), so the fused
// path may differ from the composition only where the compiler contracts a multiply and an add differently.
#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/fast_math.h"
#include "tensor/cpu/row_kernels.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"
#include "tensor/ops.h"

namespace glance {

namespace {

bool is_float(DType t) { return t == DType::Float32 || t == DType::Float64; }

bool plain(const Tensor& t, DType dtype) { return t.defined() && t.device().is_cpu() && t.dtype() == dtype && t.is_contiguous(); }

bool parallel_for(int64_t n) { return n >= cpu::kParallelThreshold; }

// GELU (erf form) and its derivative, exactly as the elementwise kernels write them.
template <typename T>
T gelu(T z) {
  if constexpr (std::is_same_v<T, float>) return T(0.5) * z * (T(1) + cpu::fast_erf(z * T(0.7071067811865476)));
  return T(0.5) * z * (T(1) + std::erf(z * T(0.7071067811865476)));
}
template <typename T>
T gelu_grad(T z) {
  if constexpr (std::is_same_v<T, float>) {
    const T cdf = T(0.5) * (T(1) + cpu::fast_erf(z * T(0.7071067811865476)));
    return cdf + z * T(0.3989422804014327) * cpu::fast_exp(T(-0.5) * z * z);
  }
  const T cdf = T(0.5) * (T(1) + std::erf(z * T(0.7071067811865476)));
  return cdf + z * T(0.3989422804014327) * std::exp(T(-0.5) * z * z);
}

// x [rows, C] (contiguous), bias [C]: f(x[r, j] + bias[j]) into out, rows spread over the threads.
template <typename T, typename F>
void rows_with_bias(int64_t rows, int64_t C, const T* x, const T* bias, T* out, F f) {
#pragma omp parallel for schedule(static) if (parallel_for(rows * C) && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* o = out + r * C;
    for (int64_t j = 0; j < C; ++j) o[j] = f(r * C + j, xr[j] + bias[j]);
  }
}

bool bias_gelu_fits(const Tensor& x, const Tensor& bias) {
  return is_float(x.dtype()) && plain(x, x.dtype()) && plain(bias, x.dtype()) && x.dim() >= 1 && bias.dim() == 1 &&
         bias.size(0) == x.size(-1);
}

template <typename T>
void residual_layer_norm_typed(const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias,
                               double eps, const ResidualLayerNormResult& r) {
  const int64_t C = x.size(-1), rows = C ? x.numel() / C : 0;
  const T *px = x.data<T>(), *pr = residual.data<T>();
  const T* w = weight.defined() ? weight.data<T>() : nullptr;
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  T *ps = r.sum.data<T>(), *po = r.out.data<T>(), *pm = r.mean.data<T>(), *pd = r.rstd.data<T>();
#pragma omp parallel for schedule(static) if (parallel_for(rows * C) && rows > 1)
  for (int64_t i = 0; i < rows; ++i) {
    T* s = ps + i * C;
    for (int64_t j = 0; j < C; ++j) s[j] = px[i * C + j] + pr[i * C + j];
    cpu::layer_norm_row(s, po + i * C, C, w, b, eps, pm + i, pd + i);  // the row is still in L1
  }
}

// logits [N, C], labels int64 [N] (contiguous) -> r.loss [N], r.dlogits [N, C].
template <typename T>
void softmax_cross_entropy_typed(const Tensor& logits, const Tensor& labels, double s,
                                 const SoftmaxCrossEntropyResult& r) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const T* z = logits.data<T>();
  const int64_t* label = labels.data<int64_t>();
  T *loss = r.loss.data<T>(), *grad = r.dlogits.data<T>();
#pragma omp parallel for schedule(static) if (parallel_for(N * C) && N > 1)
  for (int64_t i = 0; i < N; ++i) {
    const T* zi = z + i * C;
    T* gi = grad + i * C;
    const int64_t yi = label[i];
    if (yi < 0 || yi >= C) {  // the composition's NaN row: the mistake shows, nothing is read out of bounds
      loss[i] = T(nan);
      for (int64_t j = 0; j < C; ++j) gi[j] = T(nan);
      continue;
    }
    // loss_i = -(1 - s) logp[y] - s mean_j logp[j], logp = z - lse; dlogits = softmax - (1 - s) onehot - s / C.
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < C; ++j) m = std::max(m, double(zi[j]));
    const double lse = m + std::log(cpu::lane_sum(C, [&](int64_t j) { return std::exp(double(zi[j]) - m); }));
    const double mean_logp = cpu::lane_sum(C, [&](int64_t j) { return double(zi[j]) - lse; }) / double(C);
    loss[i] = T(-(1.0 - s) * (double(zi[yi]) - lse) - s * mean_logp);
    for (int64_t j = 0; j < C; ++j) gi[j] = T(std::exp(double(zi[j]) - lse) - (j == yi ? 1.0 - s : 0.0) - s / double(C));
  }
}

template <typename T>
void adamw_typed(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamWParams& h) {
  const double correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  const int64_t n = p.numel();
  // The constants as the composition's scalar operands become them (in T), op for op (fused_default.cpp).
  const T decay = T(1.0 - h.lr * h.weight_decay), b1 = T(h.beta1), one_b1 = T(1.0 - h.beta1), b2 = T(h.beta2);
  const T one_b2 = T(1.0 - h.beta2), c2 = T(correction2), eps = T(h.eps), step = T(-h.lr / correction1);
  const bool decays = h.weight_decay != 0;
  T *pp = p.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
  const T* pg = g.data<T>();
#pragma omp parallel for simd schedule(static) if (parallel_for(n))
  for (int64_t i = 0; i < n; ++i) {
    const T gi = pg[i];
    const T pi = decays ? pp[i] * decay : pp[i];
    const T mi = pm[i] * b1 + gi * one_b1;
    const T vi = pv[i] * b2 + gi * gi * one_b2;
    pm[i] = mi;
    pv[i] = vi;
    pp[i] = pi + (mi / (std::sqrt(vi / c2) + eps)) * step;
  }
}

}  // namespace

bool CpuBackend::has_fused(FusedOp op) const {
  (void)op;
  return true;  // all four (measured: docs/performance/2026-12-08-cpu-vs-pytorch2.md)
}

Tensor CpuBackend::bias_gelu(const Tensor& x, const Tensor& bias) {
  if (!bias_gelu_fits(x, bias)) return Backend::bias_gelu(x, bias);
  const op_profile::Scope profile_scope(OpKind::Gelu);
  const Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t C = bias.size(0), rows = C ? x.numel() / C : 0;
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cpu bias_gelu", T, {
    rows_with_bias<T>(rows, C, x.data<T>(), bias.data<T>(), out.data<T>(), [](int64_t, T z) { return gelu(z); });
  });
  return out;
}

Tensor CpuBackend::bias_gelu_backward(const Tensor& dy_in, const Tensor& x, const Tensor& bias) {
  if (!bias_gelu_fits(x, bias) || dy_in.shape() != x.shape() || dy_in.dtype() != x.dtype()) {
    return Backend::bias_gelu_backward(dy_in, x, bias);
  }
  const op_profile::Scope profile_scope(OpKind::Gelu);
  const Tensor dy = ops::contiguous(dy_in);  // the upstream gradient may be a view
  const Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t C = bias.size(0), rows = C ? x.numel() / C : 0;
  GLANCE_DISPATCH_FLOAT(x.dtype(), "cpu bias_gelu_backward", T, {
    const T* g = dy.data<T>();
    rows_with_bias<T>(rows, C, x.data<T>(), bias.data<T>(), dx.data<T>(),
                      [g](int64_t i, T z) { return g[i] * gelu_grad(z); });
  });
  return dx;
}

ResidualLayerNormResult CpuBackend::residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                        const Tensor& bias, double eps) {
  const DType dtype = x.dtype();
  const bool fits = is_float(dtype) && plain(x, dtype) && plain(residual, dtype) && residual.shape() == x.shape() &&
                    x.dim() >= 1 && (!weight.defined() || (plain(weight, dtype) && weight.numel() == x.size(-1))) &&
                    (!bias.defined() || (plain(bias, dtype) && bias.numel() == x.size(-1)));
  if (!fits) return Backend::residual_layer_norm(x, residual, weight, bias, eps);
  const op_profile::Scope profile_scope(OpKind::LayerNorm);
  const int64_t C = x.size(-1), rows = C ? x.numel() / C : 0;
  ResidualLayerNormResult r;
  r.sum = Tensor::empty(x.shape(), dtype, x.device());
  r.out = Tensor::empty(x.shape(), dtype, x.device());
  r.mean = Tensor::empty({rows}, dtype, x.device());
  r.rstd = Tensor::empty({rows}, dtype, x.device());
  GLANCE_DISPATCH_FLOAT(dtype, "cpu residual_layer_norm", T, { residual_layer_norm_typed<T>(x, residual, weight, bias, eps, r); });
  return r;
}

SoftmaxCrossEntropyResult CpuBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                            double label_smoothing) {
  const DType dtype = logits.dtype();
  const bool fits = is_float(dtype) && plain(logits, dtype) && logits.dim() == 2 && logits.size(1) > 0 &&
                    labels.device().is_cpu() && labels.dim() == 1 && labels.size(0) == logits.size(0) &&
                    (labels.dtype() == DType::Int64 || labels.dtype() == DType::Int32);
  if (!fits) return Backend::softmax_cross_entropy(logits, labels, label_smoothing);
  const op_profile::Scope profile_scope(OpKind::Softmax);
  const Tensor y = ops::contiguous(ops::to_dtype(labels, DType::Int64));
  const int64_t N = logits.size(0), C = logits.size(1);
  SoftmaxCrossEntropyResult r;
  r.loss = Tensor::empty({N}, dtype, logits.device());
  r.dlogits = Tensor::empty({N, C}, dtype, logits.device());
  GLANCE_DISPATCH_FLOAT(dtype, "cpu softmax_cross_entropy", T, { softmax_cross_entropy_typed<T>(logits, y, label_smoothing, r); });
  return r;
}

void CpuBackend::adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamWParams& h) {
  const DType dtype = p.dtype();
  const bool fits = is_float(dtype) && plain(p, dtype) && plain(g, dtype) && plain(m, dtype) && plain(v, dtype) &&
                    g.numel() == p.numel() && m.numel() == p.numel() && v.numel() == p.numel();
  if (!fits) return Backend::adamw_step(p, g, m, v, h);
  const op_profile::Scope profile_scope(OpKind::Optimizer);
  GLANCE_DISPATCH_FLOAT(dtype, "cpu adamw_step", T, { adamw_typed<T>(p, g, m, v, h); });
}

}  // namespace glance
