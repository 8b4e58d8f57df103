// The default implementations of the Backend's fused ops (tensor/backend.h): each is the composition of
// primitives it stands for, so a device without fused kernels computes the same thing in several passes.
// A device that has faster kernels overrides these and says so in has_fused (cuda/fused.cu).
#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace glance {

Tensor Backend::bias_gelu(const Tensor& x, const Tensor& bias) {
  return ops::unary(UnaryOp::GeluErf, ops::binary(BinaryOp::Add, x, bias));  // bias broadcast over the rows
}

Tensor Backend::bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias) {
  return ops::binary(BinaryOp::GeluErfGrad, dy, ops::binary(BinaryOp::Add, x, bias));  // dy * GELU'(x + bias)
}

ResidualLayerNormResult Backend::residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                     const Tensor& bias, double eps) {
  ResidualLayerNormResult r;
  r.sum = ops::binary(BinaryOp::Add, x, residual);
  ops::LayerNormResult ln = ops::layer_norm(r.sum, weight, bias, eps);
  r.out = ln.out;
  r.mean = ops::reshape(ln.mean, {-1});  // x.shape[:-1] -> [rows]
  r.rstd = ops::reshape(ln.rstd, {-1});
  return r;
}

SoftmaxCrossEntropyResult Backend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                         double label_smoothing) {
  if (logits.dim() != 2 || labels.dim() != 1 || labels.size(0) != logits.size(0)) {
    throw std::invalid_argument("softmax_cross_entropy: expected logits [N, C] and labels [N], got " +
                                shape_str(logits.shape()) + " and " + shape_str(labels.shape()));
  }
  const double s = label_smoothing, nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t N = logits.size(0), C = logits.size(1);
  SoftmaxCrossEntropyResult r;
  if (C == 0) {  // no classes: nothing is a valid label
    r.loss = ops::full({N}, nan, logits.dtype(), logits.device());
    r.dlogits = ops::empty({N, 0}, logits.dtype(), logits.device());
    return r;
  }
  const Tensor y = ops::unsqueeze(ops::to_dtype(ops::to_device(labels, logits.device()), DType::Int64), 1);  // [N, 1]
  // A row whose label is outside [0, C) reads class 0 (the clamped label) and is then overwritten with NaN.
  const Tensor y_safe = ops::binary(BinaryOp::Minimum, ops::binary(BinaryOp::Maximum, y, 0.0), C - 1.0);
  const Tensor valid = ops::binary(BinaryOp::Eq, y, y_safe);  // Bool [N, 1]
  const Tensor logp = ops::log_softmax(logits, 1);  // [N, C]
  // loss_i = -(1 - s) logp[i, y_i] - s mean_j logp[i, j]
  const Tensor picked = ops::gather(logp, 1, y_safe, ops::IndexCheck::AlreadyChecked);  // [N, 1]
  Tensor loss = ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, picked, -(1.0 - s)),
                            ops::binary(BinaryOp::Mul, ops::mean(logp, {1}, true), -s));
  // dlogits_i = softmax_i - (1 - s) onehot(y_i) - s / C
  const Tensor classes = ops::arange(0, static_cast<double>(C), 1, DType::Int64, logits.device());  // [C]
  const Tensor onehot = ops::to_dtype(ops::binary(BinaryOp::Eq, classes, y_safe), logits.dtype());  // [N, C]
  Tensor dlogits = ops::binary(BinaryOp::Sub, ops::unary(UnaryOp::Exp, logp),
                               ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, onehot, 1.0 - s), s / C));
  const Tensor nans = ops::full({1}, nan, logits.dtype(), logits.device());
  r.loss = ops::reshape(ops::where(valid, loss, nans), {N});
  r.dlogits = ops::where(valid, dlogits, nans);
  return r;
}

void Backend::adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamWParams& h) {
  // The update of nn/optim/adamw.cpp, op for op.
  const double correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  if (h.weight_decay != 0) ops::copy_(p, ops::binary(BinaryOp::Mul, p, 1.0 - h.lr * h.weight_decay));
  ops::copy_(m, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, m, h.beta1),
                            ops::binary(BinaryOp::Mul, g, 1.0 - h.beta1)));
  ops::copy_(v, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, v, h.beta2),
                            ops::binary(BinaryOp::Mul, ops::binary(BinaryOp::Mul, g, g), 1.0 - h.beta2)));
  const Tensor denom =
      ops::binary(BinaryOp::Add, ops::unary(UnaryOp::Sqrt, ops::binary(BinaryOp::Div, v, correction2)), h.eps);
  ops::add_(p, ops::binary(BinaryOp::Div, m, denom), -h.lr / correction1);
}

}  // namespace glance
