// Seeded, reproducible random numbers from a counter-based generator (Philox4x32-10).
//
// Why counter-based: element i of a draw is a pure function of (seed, offset + i), so the result is the
// same on one thread or many, on the CPU or the GPU, and a generator's whole state is two integers
// (easy to save in a checkpoint). Every element consumes exactly one 128-bit Philox block, so a draw of
// n elements advances the generator's offset by n.
#pragma once
#include <cstdint>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace glance {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  PhiloxState state() const { return state_; }
  void set_state(PhiloxState state) { state_ = state; }
  // Hands out `blocks` blocks of the stream: returns where they start and moves past them.
  PhiloxState advance(uint64_t blocks) {
    PhiloxState start = state_;
    state_.offset += blocks;
    return start;
  }

 private:
  PhiloxState state_;
};

Generator& default_generator();            // the one used when no generator is passed
void manual_seed(uint64_t seed);           // reseeds the default generator

// One Philox4x32-10 block: four 32-bit random words for (seed, counter). Exposed for tests and backends.
struct PhiloxBlock {
  uint32_t x[4];
};
PhiloxBlock philox4x32_10(uint64_t seed, uint64_t counter);

namespace ops {
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);   // uniform [0, 1)
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::Float32, Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator* gen = nullptr);  // N(0, 1)
Tensor normal(const Shape& shape, double mean, double std, DType dtype = DType::Float32, Generator* gen = nullptr);
// N(mean, std) restricted to [low, high], by the inverse CDF (as torch.nn.init.trunc_normal_).
Tensor trunc_normal(const Shape& shape, double mean, double std, double low, double high,
                    DType dtype = DType::Float32, Generator* gen = nullptr);
// 1 with probability p, else 0, in `dtype` (Float32 for dropout masks, Bool for boolean masks).
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::Float32, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr);  // int64 in [low, high)
Tensor randperm(int64_t n, Generator* gen = nullptr);  // int64, a uniformly random permutation of 0..n-1
}  // namespace ops

}  // namespace glance
