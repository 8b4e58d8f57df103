// Dynamic loss scaling: scaled-then-unscaled gradients against plain backward (bit-exact for a power-of-two
// scale), inf and NaN detection (including a finite gradient whose plain sum overflows), the backoff and
// growth schedule step by step, and the option checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "nn/expect_throw.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optim/loss_scaler.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::expect_throw_containing;

std::vector<double> values(const Tensor& t) { return ops::to_dtype(t, DType::Float64).to_vector<double>(); }

Tensor param(const std::vector<double>& v, DType dtype = DType::Float32) {
  Tensor p = ops::to_dtype(ops::from_vector<double>(v), dtype);
  p.set_requires_grad(true);
  return p;
}

// A linear map on fixed data: loss = mse(x W^T + b, y), x [5, 4], W [3, 4], b [3].
struct LinearProblem {
  Tensor x, y, w, b;
  explicit LinearProblem(DType dtype) {
    Generator gen(7);
    x = randn({5, 4}, dtype, &gen);
    y = randn({5, 3}, dtype, &gen);
    w = randn({3, 4}, dtype, &gen).set_requires_grad(true);
    b = randn({3}, dtype, &gen).set_requires_grad(true);
  }
  Tensor loss() const { return mse_loss(linear(x, w, b), y); }
  std::vector<Tensor> params() const { return {w, b}; }
};

TEST(LossScaler, UnscaledGradientsEqualPlainBackward) {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (double s : {65536.0, 1024.0, 1000.0}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " scale " + std::to_string(s));
      LinearProblem problem(dtype);
      problem.loss().backward();
      std::vector<std::vector<double>> expected;
      for (Tensor& p : problem.params()) {
        expected.push_back(values(p.grad()));
        p.zero_grad();
      }

      LossScaler scaler({.init_scale = s});
      scaler.scale(problem.loss()).backward();
      const bool power_of_two = s != 1000.0;
      for (size_t i = 0; i < expected.size(); ++i) {  // backward really saw the scale
        std::vector<double> scaled = values(problem.params()[i].grad());
        for (size_t j = 0; j < scaled.size(); ++j) EXPECT_NEAR(scaled[j], expected[i][j] * s, 1e-5 * s);
      }
      ASSERT_TRUE(scaler.unscale(problem.params()));
      for (size_t i = 0; i < expected.size(); ++i) {
        std::vector<double> got = values(problem.params()[i].grad());
        ASSERT_EQ(got.size(), expected[i].size());
        for (size_t j = 0; j < got.size(); ++j) {
          if (power_of_two) {
            EXPECT_EQ(got[j], expected[i][j]) << "param " << i << " [" << j << "]";  // bit-exact
          } else {
            EXPECT_NEAR(got[j], expected[i][j], 1e-6 * (1 + std::abs(expected[i][j])))
                << "param " << i << " [" << j << "]";
          }
        }
      }
    }
  }
}

TEST(LossScaler, InfOrNanGradientSkipsTheStepAndHalvesTheScale) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {inf, -inf, nan}) {
    SCOPED_TRACE("bad value " + std::to_string(bad));
    Tensor a = param({1.0, 2.0}), no_grad = param({3.0}), c = param({4.0, 5.0, 6.0});
    a.set_grad(ops::from_vector<float>({2.0f, 4.0f}));
    c.set_grad(ops::from_vector<float>({1.0f, static_cast<float>(bad), 3.0f}));

    LossScaler scaler({.init_scale = 8.0, .growth_interval = 3});
    scaler.update(true);
    scaler.update(true);
    ASSERT_EQ(scaler.good_steps_in_a_row(), 2);
    EXPECT_FALSE(scaler.unscale({a, no_grad, c}));
    EXPECT_EQ(values(a.grad()), (std::vector<double>{0.25, 0.5}));  // finite gradients are still unscaled
    EXPECT_FALSE(no_grad.grad().defined());
    scaler.update(false);
    EXPECT_EQ(scaler.scale_value(), 4.0);
    EXPECT_EQ(scaler.skipped_steps(), 1);
    EXPECT_EQ(scaler.good_steps_in_a_row(), 0);

    c.set_grad(ops::from_vector<float>({1.0f, 2.0f, 3.0f}));  // the next step is clean again
    EXPECT_TRUE(scaler.unscale({a, no_grad, c}));
    EXPECT_TRUE(scaler.unscale({}));
  }
}

TEST(LossScaler, ScaleGrowsAfterGrowthIntervalGoodSteps) {
  LossScaler scaler({.init_scale = 4.0, .growth_factor = 2.0, .growth_interval = 3});
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 4.0);
  EXPECT_EQ(scaler.good_steps_in_a_row(), 2);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 8.0);  // grew exactly once
  EXPECT_EQ(scaler.good_steps_in_a_row(), 0);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 8.0);  // the fourth does not grow it

  scaler.update(true);
  scaler.update(false);  // restarts the count: 8 * 0.5
  EXPECT_EQ(scaler.scale_value(), 4.0);
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 4.0);  // only 2 good steps since the overflow
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 8.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

TEST(LossScaler, LargeFiniteGradientWhosePlainSumOverflowsIsFinite) {
  Tensor p = param({0.0, 0.0, 0.0, 0.0});
  p.set_grad(ops::full({4}, 3e38, DType::Float32));
  ASSERT_TRUE(std::isinf(ops::sum(p.grad()).item()));  // the premise: a check by sum(g) would say "not finite"
  LossScaler scaler({.init_scale = 2.0});
  EXPECT_TRUE(scaler.unscale({p}));
  for (double v : values(p.grad())) EXPECT_EQ(v, static_cast<double>(3e38f / 2.0f));
}

TEST(LossScaler, BadOptionsThrowNamingTheOptionAndValue) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  auto make = [](LossScalerOptions o) { return [o] { LossScaler scaler(o); }; };
  expect_throw_containing<std::invalid_argument>(make({.init_scale = 0.0}), {"init_scale", "0"});
  expect_throw_containing<std::invalid_argument>(make({.init_scale = -3.0}), {"init_scale", "-3"});
  expect_throw_containing<std::invalid_argument>(make({.init_scale = inf}), {"init_scale", "inf"});
  expect_throw_containing<std::invalid_argument>(make({.init_scale = nan}), {"init_scale", "nan"});
  expect_throw_containing<std::invalid_argument>(make({.growth_factor = 1.0}), {"growth_factor", "1"});
  expect_throw_containing<std::invalid_argument>(make({.growth_factor = 0.5}), {"growth_factor", "0.5"});
  expect_throw_containing<std::invalid_argument>(make({.backoff_factor = 0.0}), {"backoff_factor", "0"});
  expect_throw_containing<std::invalid_argument>(make({.backoff_factor = 1.0}), {"backoff_factor", "1"});
  expect_throw_containing<std::invalid_argument>(make({.backoff_factor = 1.5}), {"backoff_factor", "1.5"});
  expect_throw_containing<std::invalid_argument>(make({.backoff_factor = nan}), {"backoff_factor", "nan"});
  expect_throw_containing<std::invalid_argument>(make({.growth_interval = 0}), {"growth_interval", "0"});
  expect_throw_containing<std::invalid_argument>(make({.growth_interval = -2}), {"growth_interval", "-2"});
  EXPECT_NO_THROW(LossScaler());
}

}  // namespace
