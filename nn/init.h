// Parameter initialisation, in place and seeded (each takes an optional Generator; the default one is
// reseeded by glance::manual_seed). Fan-in/fan-out follow PyTorch: for a weight [out, in, ...],
// fan_in = in * (product of the rest), fan_out = out * (product of the rest).
#pragma once
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace glance::nn::init {

void zeros_(const Tensor& t);
void ones_(const Tensor& t);
void constant_(const Tensor& t, double value);
void uniform_(const Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean, double std, Generator* gen = nullptr);
// N(mean, std) cut to [low, high] (ViT's default for weights: std 0.02, cut at +-2).
void trunc_normal_(const Tensor& t, double std = 0.02, double mean = 0.0, double low = -2.0, double high = 2.0,
                   Generator* gen = nullptr);
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);  // U(+-gain*sqrt(6/(fan_in+fan_out)))
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);   // N(0, gain*sqrt(2/(fan_in+fan_out)))
// Kaiming (He) for ReLU-like layers, fan_in mode: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
void kaiming_uniform_(const Tensor& t, double a = 0.0, Generator* gen = nullptr);
void kaiming_normal_(const Tensor& t, double a = 0.0, Generator* gen = nullptr);

struct Fans {
  int64_t fan_in, fan_out;
};
Fans fans_of(const Shape& shape);  // throws for fewer than 2 dims

}  // namespace glance::nn::init
