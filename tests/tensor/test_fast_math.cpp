// The vectorisable float32 exp and erf (tensor/cpu/fast_math.h) against libm in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/cpu/fast_math.h"

namespace {

using glance::cpu::fast_erf;
using glance::cpu::fast_exp;

TEST(FastMath, ExpIsWithinAFewUlps) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.00731) {
    const double want = std::exp(double(float(x)));
    worst = std::max(worst, std::abs(double(fast_exp(float(x))) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // float's epsilon is 1.19e-7
}

TEST(FastMath, ExpEdges) {
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_EQ(fast_exp(-100.0f), 0.0f);
  EXPECT_EQ(fast_exp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(fast_exp(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fast_exp(std::numeric_limits<float>::quiet_NaN())));
}

TEST(FastMath, ErfIsWithinItsBound) {
  double worst = 0;
  for (double x = -6.0; x <= 6.0; x += 0.00127) {
    worst = std::max(worst, std::abs(double(fast_erf(float(x))) - std::erf(double(float(x)))));
  }
  EXPECT_LT(worst, 5e-7);  // 1.5e-7 for the formula, plus float32 rounding
  EXPECT_EQ(fast_erf(0.0f), 0.0f);
  EXPECT_FLOAT_EQ(fast_erf(10.0f), 1.0f);
  EXPECT_FLOAT_EQ(fast_erf(-10.0f), -1.0f);
}

}  // namespace

#include "tensor/ops.h"

namespace {

TEST(FastMath, FloatGeluBackwardMatchesDouble) {
  // BinaryOp::GeluErfGrad (GELU's fused backward) in float32 uses fast_erf/fast_exp; float64 uses libm.
  using namespace glance;
  std::vector<double> xs, gs;
  for (double x = -8.0; x <= 8.0; x += 0.0371) xs.push_back(x), gs.push_back(0.5 + 0.01 * x);
  const Tensor x64 = ops::from_vector(xs), g64 = ops::from_vector(gs);
  const Tensor d64 = ops::binary(BinaryOp::GeluErfGrad, g64, x64);
  const Tensor d32 = ops::binary(BinaryOp::GeluErfGrad, ops::to_dtype(g64, DType::Float32), ops::to_dtype(x64, DType::Float32));
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i], want = gs[i] * (0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
    EXPECT_NEAR(d64.data<double>()[i], want, 1e-12) << "x = " << x;
    EXPECT_NEAR(d32.data<float>()[i], want, 2e-6) << "x = " << x;
  }
  EXPECT_THROW(ops::binary(BinaryOp::GeluErfGrad, ops::zeros({2}, DType::Int64), ops::zeros({2}, DType::Int64)),
               std::invalid_argument);
}

}  // namespace
