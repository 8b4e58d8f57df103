// Dynamic loss scaling for float16 mixed-precision training (PyTorch's GradScaler, NVIDIA Apex's dynamic
// loss scaler).
//
// Why: float16 holds magnitudes from about 6e-8 (its smallest subnormal) up to 65504. Many gradients are
// smaller than 6e-8 and round to zero when cast to float16. So the loss is multiplied by a scale S before
// backward (every gradient comes out S times larger, inside fp16's range) and the float32 gradients are
// divided by S again before the update. An overflow (an inf or NaN gradient) means S was too big: that step
// is skipped and S shrinks by `backoff_factor`; after `growth_interval` good steps in a row S grows by
// `growth_factor`, so S stays near the largest value that does not overflow.
//
//   Tensor loss = ...;
//   optimizer.zero_grad();
//   scaler.scale(loss).backward();
//   const bool finite = scaler.unscale(model.parameters());
//   if (finite) { clip_grad_norm(model.parameters(), 1.0); optimizer.step(); }  // clip the true gradients
//   scaler.update(finite);
//
// bfloat16 needs none of this: it has float32's 8-bit exponent (range ~1e-38 to 3e38), only a shorter mantissa.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace glance::nn {

struct LossScalerOptions {
  double init_scale = 65536.0;     // 2^16
  double growth_factor = 2.0;      // > 1
  double backoff_factor = 0.5;     // in (0, 1)
  int64_t growth_interval = 2000;  // >= 1: finite steps in a row before the scale grows
};

class LossScaler {
 public:
  // Throws std::invalid_argument naming the bad option and its value.
  explicit LossScaler(LossScalerOptions options = {});

  // loss * scale, recorded by autograd, so backward() gives gradients S times larger.
  Tensor scale(const Tensor& loss) const;
  // Divides every defined .grad() of `params` by the scale, in place (recording nothing), and returns true
  // when every element of every gradient is finite. Synchronises with the device once.
  bool unscale(const std::vector<Tensor>& params);
  // After the step: not finite -> scale *= backoff_factor, one more skipped step, the good run restarts;
  // finite -> the good run grows, and on reaching growth_interval scale *= growth_factor and it restarts.
  void update(bool finite);

  double scale_value() const { return scale_; }
  int64_t skipped_steps() const { return skipped_; }
  int64_t good_steps_in_a_row() const { return good_run_; }

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t skipped_ = 0;
  int64_t good_run_ = 0;
};

}  // namespace glance::nn
