// Learning-rate schedules and gradient clipping: plain functions of the step.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace glance::nn {

// Linear warm-up from 0 to base_lr over `warmup` steps, then cosine decay to min_lr at `total` steps.
double warmup_cosine_lr(int64_t step, int64_t total, int64_t warmup, double base_lr, double min_lr = 0.0);
// base_lr * gamma^(step / step_size)
double step_lr(int64_t step, int64_t step_size, double gamma, double base_lr);

// Scales all gradients so their global L2 norm is at most max_norm (by max_norm / (norm + 1e-6), as torch's
// clip_grad_norm_, when the norm exceeds max_norm); returns the norm before clipping, read to the host.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The same clipping without reading anything back: the norm, the decision and the scale stay on the gradients'
// device, and the norm is returned there as a float64 scalar tensor (read it only if you need it). A GPU
// training step uses this one: a host read after backward() would wait for the whole backward pass to finish
// before the optimizer's kernels could be queued.
Tensor clip_grad_norm_on_device(const std::vector<Tensor>& params, double max_norm);
// The global L2 norm of the gradients, as a float64 scalar tensor on their device (changing nothing).
Tensor grad_norm_on_device(const std::vector<Tensor>& params);

}  // namespace glance::nn
