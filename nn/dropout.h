// Dropout and DropPath (stochastic depth). Both act only in training mode and rescale what they keep
// by 1/(1-p), so the expected value is unchanged and evaluation needs no correction.
#pragma once
#include "nn/module.h"
#include "nn/token_layout.h"

namespace glance::nn {

// Zeroes each element with probability p.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// Drops a whole residual branch per sample with probability p. `sample_of_row` (int64 [rows]) says which
// sample each row of x belongs to; undefined means x is [B, ...] with the sample on axis 0.
Tensor drop_path(const Tensor& x, double p, bool training, const Tensor& sample_of_row = Tensor(),
                 int64_t samples = 0, Generator* gen = nullptr);

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) const { return dropout(x, p, is_training()); }
  double p;
};

class DropPath : public Module {
 public:
  explicit DropPath(double p = 0.0);
  Tensor forward(const Tensor& x) const { return drop_path(x, p, is_training()); }
  // Packed tokens [N_total, D]: a "sample" is a clip of the layout.
  Tensor forward(const Tensor& x, const TokenLayout& layout) const;
  double p;
};

}  // namespace glance::nn
