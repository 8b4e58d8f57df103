#include "nn/loss.h"

#include <stdexcept>

#include "nn/fused.h"

namespace glance::nn {

namespace {
Tensor reduce(const Tensor& per_item, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return mean(per_item);
    case Reduction::Sum: return sum(per_item);
    case Reduction::None: return per_item;
  }
  return per_item;
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing, Reduction reduction) {
  if (logits.dim() != 2 || labels.dim() != 1 || labels.size(0) != logits.size(0)) {
    throw std::invalid_argument("cross_entropy: expected logits [N, C] and labels [N], got " +
                                shape_str(logits.shape()) + " and " + shape_str(labels.shape()));
  }
  if (label_smoothing < 0.0 || label_smoothing > 1.0) {
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " + std::to_string(label_smoothing));
  }
  int64_t classes = logits.size(1);
  Backend* fused = fused_backend(logits.device(), FusedOp::SoftmaxCrossEntropy);
  const bool use_fused = fused && reduction == Reduction::Mean &&
                         is_floating(logits.dtype()) && logits.size(0) > 0;
  // Labels already on the GPU go straight to the fused kernel, which writes NaN for a row whose label is out
  // of range: no read-back. Everything else is checked on the host.
  if (use_fused && !labels.device().is_cpu() && labels.device() == logits.device()) {
    return fused_cross_entropy_mean(*fused, logits, labels, label_smoothing);
  }
  Tensor y = ops::to_device(ops::to_dtype(labels, DType::Int64), Device::cpu());
  for (int64_t v : y.to_vector<int64_t>()) {
    if (v < 0 || v >= classes) {
      throw std::out_of_range("cross_entropy: label " + std::to_string(v) + " is outside [0, " + std::to_string(classes) + ")");
    }
  }
  if (use_fused) {
    // One kernel for the loss of every row and its gradient (nn/fused.h); the same formula as below.
    return fused_cross_entropy_mean(*fused, logits, ops::to_device(y, logits.device()), label_smoothing);
  }
  Tensor logp = log_softmax(logits, 1);                                            // [N, C]
  // y was checked above, on the host: gather moves it to the logits' device once, without reading it back.
  Tensor picked = squeeze(glance::gather(logp, 1, ops::unsqueeze(y, 1), ops::IndexCheck::AlreadyChecked), 1);  // [N]
  Tensor loss = -picked;
  if (label_smoothing > 0.0) loss = loss * (1.0 - label_smoothing) - mean(logp, {1}) * label_smoothing;
  return reduce(loss, reduction);
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
  if (prediction.shape() != target.shape()) {
    throw std::invalid_argument("mse_loss: prediction " + shape_str(prediction.shape()) + " and target " +
                                shape_str(target.shape()) + " differ in shape");
  }
  Tensor diff = prediction - target;
  return reduce(diff * diff, reduction);
}

namespace {
// How many rows of logits [N, C] (N > 0) have their argmax at the label, counted on the logits' device as a
// float64 scalar (exact: a sum of 0s and 1s). labels: [N] or [N, 1], int64 or int32, on any device.
Tensor correct_predictions(const Tensor& logits, const Tensor& labels) {
  const Tensor y = ops::reshape(ops::to_dtype(ops::to_device(labels, logits.device()), DType::Int64), {logits.size(0)});
  return ops::sum(ops::to_dtype(ops::binary(BinaryOp::Eq, ops::argmax(logits, 1), y), DType::Float64));
}
}  // namespace

double accuracy(const Tensor& logits, const Tensor& labels) {
  if (logits.size(0) == 0) return 0.0;
  return correct_predictions(logits, labels).item() / static_cast<double>(logits.size(0));
}

LossAndAccuracy read_loss_and_accuracy(const Tensor& loss, const Tensor& logits, const Tensor& labels,
                                       const Tensor& grad_norm) {
  if (loss.numel() != 1) throw std::invalid_argument("read_loss_and_accuracy: loss must be a scalar, got " + shape_str(loss.shape()));
  if (logits.dim() != 2 || labels.numel() != logits.size(0)) {
    throw std::invalid_argument("read_loss_and_accuracy: expected logits [N, C] and labels [N], got " +
                                shape_str(logits.shape()) + " and " + shape_str(labels.shape()));
  }
  const int64_t rows = logits.size(0);
  auto scalar64 = [&](const Tensor& t) {  // float64 [1] on the logits' device
    return ops::reshape(ops::to_dtype(ops::to_device(t.detach(), logits.device()), DType::Float64), {1});
  };
  if (rows == 0) return {loss.item(), 0.0, grad_norm.defined() ? grad_norm.item() : 0.0};
  // The numbers as one float64 [2] or [3] on the logits' device: the loss, the count of rows predicted right,
  // and the gradient norm when given (the trainer's finite check needs it: one read, not two).
  std::vector<Tensor> parts = {scalar64(loss), ops::reshape(correct_predictions(logits, labels), {1})};
  if (grad_norm.defined()) parts.push_back(scalar64(grad_norm));
  const std::vector<double> v = ops::to_device(ops::concat(parts), Device::cpu()).to_vector<double>();  // the one read
  return {v[0], v[1] / static_cast<double>(rows), grad_norm.defined() ? v[2] : 0.0};
}

}  // namespace glance::nn
