// SyntheticShapes: a built-in image task that needs no download. Each image is a coloured shape
// (class 0 disc, 1 square, 2 triangle, 3 cross) of random size, position and colour on a noisy
// background. Example i is a pure function of (seed, i), so the dataset is deterministic, thread-safe
// and the same on every machine.
#pragma once
#include "nn/data/dataset.h"

namespace glance::nn {

struct ShapesOptions {
  int64_t count = 2048;      // examples
  int64_t image_size = 16;   // square images, 3 channels
  double noise = 0.1;        // std of the background noise
  uint64_t seed = 0;
};

class SyntheticShapes : public Dataset {
 public:
  static constexpr int64_t kClasses = 4;
  explicit SyntheticShapes(ShapesOptions options) : options_(options) {}
  int64_t size() const override { return options_.count; }
  Example get(int64_t index) const override;  // input float32 [3, S, S] in about [-1, 1]

 private:
  ShapesOptions options_;
};

}  // namespace glance::nn
