#include "nn/init.h"

#include <cmath>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::nn::init {

namespace {
// Draws happen in float64 on the CPU, then are copied into t (any dtype, any device).
void assign(const Tensor& t, const Tensor& values) { ops::copy_(t, values); }
}  // namespace

void zeros_(const Tensor& t) { ops::fill_(t, 0.0); }
void ones_(const Tensor& t) { ops::fill_(t, 1.0); }
void constant_(const Tensor& t, double value) { ops::fill_(t, value); }

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  assign(t, ops::uniform(t.shape(), low, high, DType::Float64, gen));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  assign(t, ops::normal(t.shape(), mean, std, DType::Float64, gen));
}

void trunc_normal_(const Tensor& t, double std, double mean, double low, double high, Generator* gen) {
  assign(t, ops::trunc_normal(t.shape(), mean, std, low, high, DType::Float64, gen));
}

Fans fans_of(const Shape& shape) {
  if (shape.size() < 2) {
    throw std::invalid_argument("init: fan in/out need at least 2 dims, got shape " + shape_str(shape));
  }
  int64_t receptive = 1;
  for (size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  Fans f = fans_of(t.shape());
  double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  Fans f = fans_of(t.shape());
  normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), gen);
}

void kaiming_uniform_(const Tensor& t, double a, Generator* gen) {
  Fans f = fans_of(t.shape());
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / static_cast<double>(f.fan_in));
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& t, double a, Generator* gen) {
  Fans f = fans_of(t.shape());
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  normal_(t, 0.0, gain / std::sqrt(static_cast<double>(f.fan_in)), gen);
}

}  // namespace glance::nn::init
