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
