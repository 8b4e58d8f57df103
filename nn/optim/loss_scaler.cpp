#include "nn/optim/loss_scaler.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "autograd/functions.h"

namespace glance::nn {

namespace {

void require(bool ok, const char* option, double value, const char* rule) {
  if (ok) return;
  std::ostringstream message;
  message << "LossScaler: " << option << " must be " << rule << ", got " << value;
  throw std::invalid_argument(message.str());
}

}  // namespace

LossScaler::LossScaler(LossScalerOptions options) : options_(options), scale_(options.init_scale) {
  require(std::isfinite(options.init_scale) && options.init_scale > 0, "init_scale", options.init_scale,
          "finite and > 0");
  require(std::isfinite(options.growth_factor) && options.growth_factor > 1, "growth_factor",
          options.growth_factor, "finite and > 1");
  require(options.backoff_factor > 0 && options.backoff_factor < 1, "backoff_factor", options.backoff_factor,
          "in (0, 1)");
  require(options.growth_interval >= 1, "growth_interval", static_cast<double>(options.growth_interval), ">= 1");
}

Tensor LossScaler::scale(const Tensor& loss) const { return loss * scale_; }

bool LossScaler::unscale(const std::vector<Tensor>& params) {
  autograd::NoGradGuard no_grad;
  Tensor check;  // float64 scalar on the gradients' device: 0 while every element seen is finite, else NaN
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    ops::copy_(g, g / scale_);
    // g * 0 is 0 for a finite element and NaN for inf or NaN (inf * 0 = NaN), and a sum of zeros cannot
    // overflow, whereas sum(g) can (3e38 + 3e38 = inf in float32). The checks stay on the device.
    Tensor this_one = ops::to_dtype(ops::sum(g * 0.0), DType::Float64);
    check = check.defined() ? check + this_one : this_one;
  }
  return !check.defined() || check.item() == 0.0;  // the one host synchronisation; NaN == 0 is false
}

void LossScaler::update(bool finite) {
  if (!finite) {
    scale_ *= options_.backoff_factor;
    ++skipped_;
    good_run_ = 0;
    return;
  }
  if (++good_run_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_run_ = 0;
  }
}

}  // namespace glance::nn
