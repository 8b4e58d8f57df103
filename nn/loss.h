// Losses. Both are built from differentiable functions, so their gradients come from autograd.
#pragma once
#include "autograd/functions.h"

namespace glance::nn {

enum class Reduction { Mean, Sum, None };

// Cross-entropy of logits [N, C] against integer labels [N] (int64 or int32), as torch's
// F.cross_entropy: loss_i = -(1 - eps) * log p_i[y_i] - eps * mean_c log p_i[c], with p = softmax(logits).
// Throws naming a label outside [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::Mean);

// Mean squared error: mean((prediction - target)^2) (or the sum, or per element).
Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::Mean);

// Fraction of rows whose argmax equals the label.
double accuracy(const Tensor& logits, const Tensor& labels);

}  // namespace glance::nn
