// Matrix multiply, softmax, logsumexp and layer norm: the ops that work on rows of a matrix.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/counters.h"
#include "tensor/ops.h"

namespace glance::ops {

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.dim() == 0 || b_in.dim() == 0) {
    throw std::invalid_argument("matmul: both operands need at least 1 dim, got shapes " + shape_str(a_in.shape()) +
                                " and " + shape_str(b_in.shape()));
  }
  if (a_in.dtype() != b_in.dtype()) {
    throw std::invalid_argument(std::string("matmul: dtypes differ (") + dtype_name(a_in.dtype()) + " and " +
                                dtype_name(b_in.dtype()) + ")");
  }
  if (a_in.dtype() == DType::Bool || a_in.dtype() == DType::UInt8) {
    throw std::invalid_argument(std::string("matmul: dtype ") + dtype_name(a_in.dtype()) + " is not supported");
  }
  if (a_in.device() != b_in.device()) {  // a backend reads both operands' memory: they must be its own
    throw std::invalid_argument("matmul: operands are on different devices (" + a_in.device().str() + " and " +
                                b_in.device().str() + ")");
  }
  // NumPy's rule for vectors: a 1-D left operand is a row [1, K], a 1-D right operand a column [K, 1];
  // the added axis is removed from the result.
  Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in;
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (b.size(-2) != K) {
    throw std::invalid_argument("matmul: shapes " + shape_str(a_in.shape()) + " and " + shape_str(b_in.shape()) +
                                " do not align (" + std::to_string(K) + " != " + std::to_string(b.size(-2)) + ")");
  }
  // Batch axes broadcast: [2, 1, M, K] @ [3, K, N] -> [2, 3, M, N].
  Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  int64_t batch_count = numel_of(batch);
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {M, K});
  b_full.insert(b_full.end(), {K, N});
  // Flattening the batch axes is a view when they are contiguous or broadcast (stride 0), else a copy.
  Tensor a3 = reshape(expand(a, a_full), {batch_count, M, K});
  Tensor b3 = reshape(expand(b, b_full), {batch_count, K, N});
  Tensor out = Tensor::empty({batch_count, M, N}, a.dtype(), a.device());
  backend_for(a.device()).matmul(out, a3, b3);
  counters::on_matmul(2 * batch_count * M * N * K);

  Shape out_shape = batch;
  if (a_in.dim() > 1) out_shape.push_back(M);
  if (b_in.dim() > 1) out_shape.push_back(N);
  return view(out, out_shape);
}

namespace {

// Runs a row kernel over `axis`: moves the axis last, makes the rows contiguous, and moves it back.
template <typename RowKernel>
Tensor over_rows(const Tensor& x, int64_t axis, const char* name, RowKernel kernel) {
  if (!is_floating(x.dtype())) {
    throw std::invalid_argument(std::string(name) + ": expected a floating dtype, got " + dtype_name(x.dtype()));
  }
  int64_t a = normalize_axis(axis, x.dim(), name);
  Tensor moved = contiguous(transpose(x, a, -1));
  int64_t C = moved.size(-1);
  Tensor rows = view(moved, {moved.numel() / std::max<int64_t>(C, 1), C});
  Tensor out = Tensor::empty(rows.shape(), x.dtype(), x.device());
  kernel(out, rows);
  return transpose(view(out, moved.shape()), a, -1);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) {
  if (x.dim() == 0) return ones_like(x);
  return over_rows(x, axis, "softmax",
                   [](const Tensor& out, const Tensor& in) { backend_for(in.device()).softmax(out, in, false); });
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  if (x.dim() == 0) return zeros_like(x);
  return over_rows(x, axis, "log_softmax",
                   [](const Tensor& out, const Tensor& in) { backend_for(in.device()).softmax(out, in, true); });
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t axis, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  if (y.shape() != dy.shape() || y.dtype() != dy.dtype()) {
    throw std::invalid_argument(std::string(name) + ": y " + dtype_name(y.dtype()) + " " + shape_str(y.shape()) +
                                " and dy " + dtype_name(dy.dtype()) + " " + shape_str(dy.shape()) + " differ");
  }
  if (y.dim() == 0) return zeros_like(y);
  const int64_t a = normalize_axis(axis, y.dim(), name);
  const Tensor g = contiguous(transpose(dy, a, -1));
  return over_rows(y, axis, name, [&](const Tensor& out, const Tensor& rows) {
    backend_for(y.device()).softmax_backward(out, rows, view(g, rows.shape()), log);
  });
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  if (!is_floating(x.dtype())) {
    throw std::invalid_argument(std::string("logsumexp: expected a floating dtype, got ") + dtype_name(x.dtype()));
  }
  // log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the max, so no exp overflows.
  // Where a whole slice is -inf (or inf), m is replaced by 0 so that x - m stays well defined.
  std::vector<int64_t> norm = normalize_axes(axes, x.dim(), "logsumexp");
  Tensor m = max(x, norm, true);
  Tensor finite = binary(BinaryOp::Lt, unary(UnaryOp::Abs, m), std::numeric_limits<double>::infinity());
  m = where(finite, m, zeros_like(m));
  Tensor shifted = unary(UnaryOp::Exp, binary(BinaryOp::Sub, x, m));
  Tensor out = binary(BinaryOp::Add, unary(UnaryOp::Log, sum(shifted, norm, true)), m);
  if (keepdim) return out;
  Shape shape;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (!std::binary_search(norm.begin(), norm.end(), i)) shape.push_back(x.shape()[i]);
  }
  return view(out, shape);
}

LayerNormResult layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  if (!is_floating(x.dtype()) || x.dim() == 0) {
    throw std::invalid_argument("layer_norm: expected a floating tensor with at least 1 dim, got " +
                                std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape()));
  }
  int64_t C = x.size(-1);
  for (const Tensor* p : {&weight, &bias}) {
    if (p->defined() && (p->shape() != Shape{C} || p->dtype() != x.dtype() || p->device() != x.device())) {
      throw std::invalid_argument("layer_norm: weight/bias must be " + std::string(dtype_name(x.dtype())) + " [" +
                                  std::to_string(C) + "] on " + x.device().str() + ", got " + dtype_name(p->dtype()) +
                                  " " + shape_str(p->shape()) + " on " + p->device().str());
    }
  }
  Tensor rows = reshape(x, {x.numel() / std::max<int64_t>(C, 1), C});
  rows = contiguous(rows);
  Shape stat_shape(x.shape().begin(), x.shape().end() - 1);
  LayerNormResult r;
  r.out = Tensor::empty(rows.shape(), x.dtype(), x.device());
  r.mean = Tensor::empty({rows.size(0)}, x.dtype(), x.device());
  r.rstd = Tensor::empty({rows.size(0)}, x.dtype(), x.device());
  backend_for(x.device()).layer_norm_forward(r.out, r.mean, r.rstd, rows,
                                             weight.defined() ? contiguous(weight) : weight,
                                             bias.defined() ? contiguous(bias) : bias, eps);
  r.out = view(r.out, x.shape());
  r.mean = view(r.mean, stat_shape);
  r.rstd = view(r.rstd, stat_shape);
  return r;
}

LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, bool need_weight_grads) {
  int64_t C = x.size(-1);
  int64_t rows = x.numel() / std::max<int64_t>(C, 1);
  Tensor x2 = contiguous(reshape(x, {rows, C}));
  Tensor dy2 = contiguous(reshape(dy, {rows, C}));
  LayerNormGrads g;
  g.dx = Tensor::empty({rows, C}, x.dtype(), x.device());
  if (need_weight_grads) {
    g.dweight = Tensor::empty({C}, x.dtype(), x.device());
    g.dbias = Tensor::empty({C}, x.dtype(), x.device());
  }
  backend_for(x.device()).layer_norm_backward(g.dx, g.dweight, g.dbias, dy2, x2, contiguous(reshape(mean, {rows})),
                                              contiguous(reshape(rstd, {rows})),
                                              weight.defined() ? contiguous(weight) : weight);
  g.dx = view(g.dx, x.shape());
  return g;
}

}  // namespace glance::ops
