#include "nn/optim/schedule.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "autograd/functions.h"

namespace glance::nn {

double warmup_cosine_lr(int64_t step, int64_t total, int64_t warmup, double base_lr, double min_lr) {
  if (total <= 0 || warmup < 0) throw std::invalid_argument("warmup_cosine_lr: need total > 0 and warmup >= 0");
  if (step < warmup) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (step >= total) return min_lr;
  double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(total - warmup, 1));
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

double step_lr(int64_t step, int64_t step_size, double gamma, double base_lr) {
  if (step_size <= 0) throw std::invalid_argument("step_lr: step_size must be positive");
  return base_lr * std::pow(gamma, static_cast<double>(step / step_size));
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  autograd::NoGradGuard no_grad;
  // The squared norms add up on the gradients' device, and only the total is read: one host synchronisation
  // per call instead of one per parameter (which on a GPU would stall the queue ~50 times a step).
  Tensor total;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = ops::to_dtype(p.grad(), DType::Float64);
    Tensor squares = ops::sum(g * g);
    total = total.defined() ? total + squares : squares;
  }
  double norm = total.defined() ? std::sqrt(total.item()) : 0.0;
  if (norm > max_norm && norm > 0) {
    double scale = max_norm / (norm + 1e-6);  // torch's clip_grad_norm_ adds the same 1e-6
    for (const Tensor& p : params) {
      if (p.grad().defined()) ops::copy_(p.grad(), p.grad() * scale);
    }
  }
  return norm;
}

}  // namespace glance::nn
