// The Philox streams agree across devices: for the same (seed, offset) the CUDA fill produces the CPU's numbers
// (uniform and bernoulli bit for bit; normal to the last bit of libm's log/cos).
#include <gtest/gtest.h>

#include <string>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

// Fills a fresh tensor on each device through its backend, from the same state.
std::pair<Tensor, Tensor> fill_both(RandomKind kind, const Shape& shape, DType d, double a, double b, PhiloxState st) {
  Tensor c = ops::empty(shape, d), g = ops::empty(shape, d, gpu());
  backend_for(Device::cpu()).random(kind, c, a, b, st);
  backend_for(gpu()).random(kind, g, a, b, st);
  return {c, g};
}

const PhiloxState kStates[] = {{0, 0}, {42, 0}, {42, 12345}, {0xDEADBEEFCAFEF00Dull, (uint64_t(1) << 32) - 5}};

}  // namespace

TEST(CudaRandom, UniformIsBitIdenticalToTheCpu) {
  GLANCE_REQUIRE_CUDA();
  for (const PhiloxState& st : kStates) {
    for (DType d : all_dtypes()) {
      auto [c, g] = fill_both(RandomKind::Uniform, {1000, 37}, d, -1.5, 100.0, st);
      expect_equal(c, g, std::string("uniform ") + dtype_name(d) + " seed " + std::to_string(st.seed) + " offset " +
                             std::to_string(st.offset));
    }
  }
}

TEST(CudaRandom, BernoulliIsBitIdenticalToTheCpu) {
  GLANCE_REQUIRE_CUDA();
  for (const PhiloxState& st : kStates) {
    for (DType d : all_dtypes()) {
      for (double p : {0.0, 0.1, 0.5, 1.0}) {
        auto [c, g] = fill_both(RandomKind::Bernoulli, {4099}, d, p, 0.0, st);
        expect_equal(c, g, std::string("bernoulli ") + dtype_name(d) + " p " + std::to_string(p));
      }
    }
  }
}

TEST(CudaRandom, NormalMatchesTheCpu) {
  GLANCE_REQUIRE_CUDA();
  for (const PhiloxState& st : kStates) {
    auto [c64, g64] = fill_both(RandomKind::Normal, {100'003}, DType::Float64, 0.5, 2.0, st);
    expect_close(c64, g64, 1e-14, 1e-14, "normal float64 seed " + std::to_string(st.seed));
    auto [c32, g32] = fill_both(RandomKind::Normal, {100'003}, DType::Float32, 0.5, 2.0, st);
    expect_close(c32, g32, 2.5e-7, 1e-30, "normal float32 seed " + std::to_string(st.seed));  // at most 1 ulp
  }
}

TEST(CudaRandom, ElementIOfAFillIsBlockOffsetPlusI) {
  GLANCE_REQUIRE_CUDA();
  // A fill from offset 100 equals the tail of a fill from offset 0: the stream layout of tensor/random.h.
  auto [c, g] = fill_both(RandomKind::Uniform, {300}, DType::Float64, 0, 1, {7, 0});
  auto [c2, g2] = fill_both(RandomKind::Uniform, {200}, DType::Float64, 0, 1, {7, 100});
  expect_equal(ops::narrow(g, 0, 100, 200), g2, "offset 100 is element 100");
  // And the float32 uniform is the top 24 bits of word 0 of the block, as on the CPU.
  Tensor one = ops::empty({1}, DType::Float32, gpu());
  backend_for(gpu()).random(RandomKind::Uniform, one, 0.0, 1.0, {7, 3});
  const PhiloxBlock block = philox4x32_10(7, 3);
  EXPECT_EQ(values(one)[0], double(float(double(block.x[0] >> 8) * 0x1.0p-24)));
}
