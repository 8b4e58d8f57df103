#include "nn/data/shapes.h"

#include <cmath>
#include <stdexcept>

#include "tensor/ops.h"
#include "tensor/random.h"

namespace glance::nn {

Example SyntheticShapes::get(int64_t index) const {
  if (index < 0 || index >= options_.count) {
    throw std::out_of_range("SyntheticShapes: index " + std::to_string(index) + " outside [0, " +
                            std::to_string(options_.count) + ")");
  }
  const int64_t S = options_.image_size;
  Generator gen(options_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index));
  std::vector<float> u = ops::rand({8}, DType::Float32, &gen).to_vector<float>();
  Tensor noise = options_.noise > 0 ? ops::normal({3, S, S}, 0.0, options_.noise, DType::Float32, &gen)
                                    : ops::zeros({3, S, S});
  float* px = noise.data<float>();

  const int64_t label = index % kClasses;                 // balanced classes
  const double radius = S * (0.18 + 0.14 * u[0]);         // shape size
  const double cx = radius + u[1] * (S - 2 * radius), cy = radius + u[2] * (S - 2 * radius);
  const float colour[3] = {0.3f + 0.7f * u[3], 0.3f + 0.7f * u[4], 0.3f + 0.7f * u[5]};
  const float background = -0.5f + 0.3f * u[6];

  for (int64_t y = 0; y < S; ++y) {
    for (int64_t x = 0; x < S; ++x) {
      double dx = (x + 0.5 - cx) / radius, dy = (y + 0.5 - cy) / radius;  // shape coordinates in [-1, 1]
      bool inside = false;
      switch (label) {
        case 0: inside = dx * dx + dy * dy <= 1.0; break;                           // disc
        case 1: inside = std::abs(dx) <= 0.8 && std::abs(dy) <= 0.8; break;         // square
        case 2: inside = dy <= 0.8 && dy >= -0.9 + 1.7 * std::abs(dx); break;        // triangle, apex up
        case 3: inside = (std::abs(dx) <= 0.3 && std::abs(dy) <= 1.0) || (std::abs(dy) <= 0.3 && std::abs(dx) <= 1.0); break;
      }
      for (int c = 0; c < 3; ++c) px[(c * S + y) * S + x] += inside ? colour[c] : background;
    }
  }
  return {noise, label};
}

}  // namespace glance::nn
