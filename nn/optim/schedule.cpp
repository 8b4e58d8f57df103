#include "nn/optim/schedule.h"

#include <algorithm>
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

Tensor grad_norm_on_device(const std::vector<Tensor>& params) {
  autograd::NoGradGuard no_grad;
  // The squared norms add up in float64 on the gradients' device.
  Tensor total;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = ops::to_dtype(p.grad(), DType::Float64);
    Tensor squares = ops::sum(g * g);
    total = total.defined() ? total + squares : squares;
  }
  if (!total.defined()) return ops::scalar(0.0, DType::Float64);
  return ops::unary(UnaryOp::Sqrt, total);
}

Tensor clip_grad_norm_on_device(const std::vector<Tensor>& params, double max_norm) {
  if (!(max_norm > 0)) throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
  autograd::NoGradGuard no_grad;
  const Tensor norm = grad_norm_on_device(params);  // float64 []
  // scale = max_norm / (norm + 1e-6) when norm > max_norm, else exactly 1 (x * 1 changes no value), chosen on
  // the device: the host never learns which. torch's clip_grad_norm_ adds the same 1e-6.
  const Tensor limit = ops::full({}, max_norm, DType::Float64, norm.device());
  const Tensor scale = ops::where(norm > limit, limit / (norm + 1e-6), ops::ones_like(norm));
  // One multiply per gradient, in place, by the scale in the gradient's dtype (converted once per dtype).
  std::vector<std::pair<DType, Tensor>> scale_as;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    const DType dt = p.grad().dtype();
    auto it = std::find_if(scale_as.begin(), scale_as.end(), [dt](const auto& e) { return e.first == dt; });
    if (it == scale_as.end()) it = scale_as.insert(scale_as.end(), {dt, ops::to_dtype(scale, dt)});
    ops::mul_(p.grad(), it->second);
  }
  return norm;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  return clip_grad_norm_on_device(params, max_norm).item();  // one host read for the whole model
}

}  // namespace glance::nn
