// Losses. Both are built from differentiable functions, so their gradients come from autograd.
#pragma once
#include "autograd/functions.h"

namespace glance::nn {

enum class Reduction { Mean, Sum, None };

// Cross-entropy of logits [N, C] against integer labels [N] (int64 or int32), as torch's
// F.cross_entropy: loss_i = -(1 - eps) * log p_i[y_i] - eps * mean_c log p_i[c], with p = softmax(logits).
// Throws naming a label outside [0, C), checking on the host, except in one case: labels already on the
// logits' GPU when the fused softmax-cross-entropy kernel serves the call (float logits, Reduction::Mean,
// N > 0, fusion on) go to the kernel unread, since reading them back would make the host wait for the whole
// forward pass; a label outside [0, C) makes the loss NaN there. (The trainer checks its labels while it
// builds the batch.) Device labels on the unfused path are read back for the check.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::Mean);

// Mean squared error: mean((prediction - target)^2) (or the sum, or per element).
Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::Mean);

// Fraction of rows whose argmax equals the label.
double accuracy(const Tensor& logits, const Tensor& labels);

// A training step's loss value and accuracy, read from the device in one copy (loss.item() and accuracy()
// would read twice, and every read waits for the GPU's queue to drain). loss is a scalar.
struct LossAndAccuracy {
  double loss = 0, accuracy = 0;
  double grad_norm = 0;  // the `grad_norm` given (a scalar on the device, e.g. clip_grad_norm_on_device's), or 0
};
LossAndAccuracy read_loss_and_accuracy(const Tensor& loss, const Tensor& logits, const Tensor& labels,
                                       const Tensor& grad_norm = Tensor());

}  // namespace glance::nn
