// The random draws of tensor/random.h: reproducibility (same seed, same numbers; the offset moves by one
// block per element), and the distributions checked against their analytic moments. Each statistical test
// uses 100k draws and a tolerance of 5 standard errors; the seeds are fixed, so the tests are
// deterministic, and a correct implementation passes them with a wide margin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/random.h"

namespace {

using namespace glance;

constexpr int64_t kDraws = 100000;

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double var_of(const std::vector<double>& v) {  // population variance
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}
std::vector<double> as_doubles(const Tensor& t) { return ops::to_dtype(t, DType::Float64).to_vector<double>(); }

// Runs `f`, which must throw std::invalid_argument whose message contains every one of `parts`.
template <typename F>
void expect_invalid(F f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    for (const char* part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message: " << e.what() << "\nmissing: " << part;
    }
  }
}

// ---- reproducibility ----

TEST(Random, SameSeedGivesIdenticalTensors) {
  Generator g1(42), g2(42);
  EXPECT_EQ(ops::randn({64, 33}, DType::Float32, &g1).to_vector<float>(),
            ops::randn({64, 33}, DType::Float32, &g2).to_vector<float>());
  EXPECT_EQ(ops::randperm(50, &g1).to_vector<int64_t>(), ops::randperm(50, &g2).to_vector<int64_t>());

  manual_seed(7);
  std::vector<double> a = ops::rand({100}, DType::Float64).to_vector<double>();
  manual_seed(7);
  std::vector<double> b = ops::rand({100}, DType::Float64).to_vector<double>();
  EXPECT_EQ(a, b);
}

TEST(Random, DifferentSeedsAndSuccessiveDrawsDiffer) {
  Generator g1(1), g2(2);
  std::vector<double> a = ops::rand({100}, DType::Float64, &g1).to_vector<double>();
  std::vector<double> b = ops::rand({100}, DType::Float64, &g2).to_vector<double>();
  std::vector<double> c = ops::rand({100}, DType::Float64, &g1).to_vector<double>();  // g1's next draw
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 100; ++i) {
    same_ab += a[i] == b[i];
    same_ac += a[i] == c[i];
  }
  EXPECT_EQ(same_ab, 0);
  EXPECT_EQ(same_ac, 0);
}

TEST(Random, OffsetAdvancesByNumel) {
  Generator g(5);
  EXPECT_EQ(g.state().offset, 0u);
  ops::rand({3, 4}, DType::Float32, &g);
  EXPECT_EQ(g.state().offset, 12u);
  ops::randn({7}, DType::Float64, &g);
  EXPECT_EQ(g.state().offset, 19u);
  ops::trunc_normal({2, 5}, 0.0, 1.0, -2.0, 2.0, DType::Float32, &g);
  EXPECT_EQ(g.state().offset, 29u);
  ops::bernoulli({4}, 0.5, DType::Bool, &g);
  EXPECT_EQ(g.state().offset, 33u);
  ops::randint(0, 10, {6}, &g);
  EXPECT_EQ(g.state().offset, 39u);
  ops::randperm(11, &g);
  EXPECT_EQ(g.state().offset, 50u);
  ops::rand({0, 3}, DType::Float32, &g);  // an empty draw takes nothing
  EXPECT_EQ(g.state().offset, 50u);
  EXPECT_EQ(g.state().seed, 5u);
}

// Counter-based: two draws of 5 and 7 elements are exactly one draw of 12, split.
TEST(Random, SplitDrawsEqualOneDraw) {
  Generator whole(9), parts(9);
  std::vector<double> all = ops::randn({12}, DType::Float64, &whole).to_vector<double>();
  std::vector<double> first = ops::randn({5}, DType::Float64, &parts).to_vector<double>();
  std::vector<double> second = ops::randn({7}, DType::Float64, &parts).to_vector<double>();
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(all, first);
}

// Restoring a saved state replays the stream (what a checkpoint relies on).
TEST(Random, SetStateReplays) {
  Generator g(3);
  ops::rand({10}, DType::Float32, &g);
  PhiloxState saved = g.state();
  std::vector<float> a = ops::rand({20}, DType::Float32, &g).to_vector<float>();
  g.set_state(saved);
  EXPECT_EQ(ops::rand({20}, DType::Float32, &g).to_vector<float>(), a);
}

// ---- distributions ----

TEST(Random, UniformRangeMeanVariance) {
  Generator g(11);
  const double lo = -2.0, hi = 3.0, w = hi - lo;
  std::vector<double> v = ops::uniform({kDraws}, lo, hi, DType::Float64, &g).to_vector<double>();
  for (double x : v) ASSERT_TRUE(x >= lo && x < hi) << x;
  const double n = static_cast<double>(kDraws);
  // Uniform[lo, hi): mean (lo+hi)/2, variance w^2/12; the variance of (x-mean)^2 is w^4 (1/80 - 1/144).
  EXPECT_NEAR(mean_of(v), (lo + hi) / 2, 5 * std::sqrt(w * w / 12 / n));
  EXPECT_NEAR(var_of(v), w * w / 12, 5 * std::sqrt(w * w * w * w * (1.0 / 80 - 1.0 / 144) / n));

  std::vector<float> f = ops::rand({kDraws}, DType::Float32, &g).to_vector<float>();
  for (float x : f) ASSERT_TRUE(x >= 0.0f && x < 1.0f) << x;
  std::vector<double> fd(f.begin(), f.end());
  EXPECT_NEAR(mean_of(fd), 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var_of(fd), 1.0 / 12, 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
}

TEST(Random, NormalMeanStd) {
  Generator g(12);
  const double mu = 1.5, sigma = 2.0, n = static_cast<double>(kDraws);
  std::vector<double> v = ops::normal({kDraws}, mu, sigma, DType::Float64, &g).to_vector<double>();
  EXPECT_NEAR(mean_of(v), mu, 5 * sigma / std::sqrt(n));
  // The sample variance of a normal has standard error sigma^2 sqrt(2/n).
  EXPECT_NEAR(var_of(v), sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / n));
  // And the tails: P(|z| > 2) = 4.55%.
  double beyond = 0;
  for (double x : v) beyond += std::fabs(x - mu) > 2 * sigma;
  EXPECT_NEAR(beyond / n, 0.0455, 5 * std::sqrt(0.0455 * 0.9545 / n));

  std::vector<double> z = as_doubles(ops::randn({kDraws}, DType::Float32, &g));
  EXPECT_NEAR(mean_of(z), 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(var_of(z), 1.0, 5 * std::sqrt(2.0 / n));
}

// The truncated normal on [low, high], from its textbook moments: with a, b the bounds in standard units,
// Z = Phi(b) - Phi(a) and phi the standard normal density,
//   mean = mu + sigma (phi(a) - phi(b)) / Z
//   var  = sigma^2 [1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2]
struct TruncatedMoments {
  double mean, var;
};
TruncatedMoments truncated_moments(double mu, double sigma, double low, double high) {
  auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); };
  auto Phi = [](double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); };
  double a = (low - mu) / sigma, b = (high - mu) / sigma, Z = Phi(b) - Phi(a);
  double r = (phi(a) - phi(b)) / Z;
  return {mu + sigma * r, sigma * sigma * (1 + (a * phi(a) - b * phi(b)) / Z - r * r)};
}

void check_trunc_normal(double mu, double sigma, double low, double high, uint64_t seed) {
  SCOPED_TRACE("trunc_normal(mean=" + std::to_string(mu) + ", std=" + std::to_string(sigma) + ", [" +
               std::to_string(low) + ", " + std::to_string(high) + "])");
  Generator g(seed);
  std::vector<double> v = ops::trunc_normal({kDraws}, mu, sigma, low, high, DType::Float64, &g).to_vector<double>();
  for (double x : v) ASSERT_TRUE(x >= low && x <= high) << x;
  TruncatedMoments m = truncated_moments(mu, sigma, low, high);
  const double n = static_cast<double>(kDraws);
  EXPECT_NEAR(mean_of(v), m.mean, 5 * std::sqrt(m.var / n));
  // For the variance, a generous bound: the fourth moment of a truncated normal is below 3 var^2.
  EXPECT_NEAR(var_of(v), m.var, 5 * m.var * std::sqrt(2.0 / n));
}

TEST(Random, TruncNormalBoundsAndMoments) {
  check_trunc_normal(0.5, 1.0, -1.0, 2.0, 21);     // asymmetric: the mean moves left of 0.5
  check_trunc_normal(0.0, 0.02, -2.0, 2.0, 22);    // ViT's init: effectively N(0, 0.02)
  check_trunc_normal(0.0, 1.0, 3.0, 4.0, 23);      // a far tail: all mass just above 3
  check_trunc_normal(-1.0, 3.0, -1.5, -0.5, 24);   // a narrow window: nearly uniform

  Generator g(25);  // float32 output stays inside bounds that float32 represents exactly
  for (float x : ops::trunc_normal({kDraws}, 0.0, 1.0, -2.0, 2.0, DType::Float32, &g).to_vector<float>()) {
    ASSERT_TRUE(x >= -2.0f && x <= 2.0f) << x;
  }
}

TEST(Random, BernoulliFraction) {
  Generator g(31);
  const double p = 0.3, n = static_cast<double>(kDraws);
  std::vector<float> v = ops::bernoulli({kDraws}, p, DType::Float32, &g).to_vector<float>();
  double ones = 0;
  for (float x : v) {
    ASSERT_TRUE(x == 0.0f || x == 1.0f) << x;
    ones += x;
  }
  EXPECT_NEAR(ones / n, p, 5 * std::sqrt(p * (1 - p) / n));

  // A Bool mask from the same seed is the same mask.
  Generator a(32), b(32);
  std::vector<float> as_float = ops::bernoulli({1000}, 0.5, DType::Float32, &a).to_vector<float>();
  std::vector<bool> as_bool = ops::bernoulli({1000}, 0.5, DType::Bool, &b).to_vector<bool>();
  for (size_t i = 0; i < as_float.size(); ++i) EXPECT_EQ(as_float[i] == 1.0f, as_bool[i]) << i;

  for (float x : ops::bernoulli({1000}, 0.0, DType::Float32, &g).to_vector<float>()) ASSERT_EQ(x, 0.0f);
  for (float x : ops::bernoulli({1000}, 1.0, DType::Float32, &g).to_vector<float>()) ASSERT_EQ(x, 1.0f);
}

TEST(Random, RandpermIsAReproduciblePermutation) {
  Generator g1(41), g2(41);
  std::vector<int64_t> p = ops::randperm(1000, &g1).to_vector<int64_t>();
  EXPECT_EQ(p, ops::randperm(1000, &g2).to_vector<int64_t>());
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_FALSE(std::is_sorted(p.begin(), p.end()));

  EXPECT_EQ(ops::randperm(0, &g1).shape(), Shape{0});
  EXPECT_EQ(ops::randperm(1, &g1).to_vector<int64_t>(), std::vector<int64_t>{0});
}

// All 6 orders of 3 items come out equally often (6000 shuffles: 1000 each, standard error ~29).
TEST(Random, RandpermIsUniform) {
  Generator g(42);
  std::map<std::vector<int64_t>, int> counts;
  for (int i = 0; i < 6000; ++i) ++counts[ops::randperm(3, &g).to_vector<int64_t>()];
  EXPECT_EQ(counts.size(), 6u);
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, 1000, 5 * std::sqrt(6000 * (1.0 / 6) * (5.0 / 6)));
}

TEST(Random, RandintRange) {
  Generator g(51);
  const double n = static_cast<double>(kDraws);
  std::vector<int64_t> v = ops::randint(-3, 5, {kDraws}, &g).to_vector<int64_t>();
  std::vector<int> counts(8, 0);
  for (int64_t x : v) {
    ASSERT_TRUE(x >= -3 && x < 5) << x;
    ++counts[x + 3];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 8, 5 * std::sqrt(n * (1.0 / 8) * (7.0 / 8)));
  EXPECT_EQ(ops::randint(-3, 5, {2, 3}, &g).dtype(), DType::Int64);

  // One-value range, and the whole int64 range (no overflow in high - low).
  for (int64_t x : ops::randint(7, 8, {100}, &g).to_vector<int64_t>()) ASSERT_EQ(x, 7);
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  int negatives = 0;
  for (int64_t x : ops::randint(lo, hi, {1000}, &g).to_vector<int64_t>()) {
    ASSERT_LT(x, hi);
    negatives += x < 0;
  }
  EXPECT_NEAR(negatives, 500, 5 * std::sqrt(1000 * 0.25));
}

// The documented mapping: element i is low + floor(w * range / 2^64) with w = the 64-bit word x1:x0 of
// Philox block (seed, offset + i). With range 2^32 that is exactly word x1.
TEST(Random, RandintUsesOnePhiloxBlockPerElement) {
  Generator g(1234);
  ops::rand({5}, DType::Float32, &g);  // start from offset 5
  std::vector<int64_t> v = ops::randint(0, int64_t{1} << 32, {8}, &g).to_vector<int64_t>();
  for (uint64_t i = 0; i < 8; ++i) EXPECT_EQ(v[i], static_cast<int64_t>(philox4x32_10(1234, 5 + i).x[1])) << i;
}

// ---- argument checks: the message names the op and the bad value; the generator does not move ----

TEST(Random, BadArgumentsThrow) {
  Generator g(0);
  expect_invalid([&] { ops::normal({3}, 0.0, 0.0, DType::Float32, &g); }, {"normal", "std", "0"});
  expect_invalid([&] { ops::normal({3}, 0.0, -1.0, DType::Float32, &g); }, {"normal", "std", "-1"});
  expect_invalid([&] { ops::trunc_normal({3}, 0.0, -2.0, -1.0, 1.0, DType::Float32, &g); }, {"trunc_normal", "-2"});
  expect_invalid([&] { ops::trunc_normal({3}, 0.0, 1.0, 2.0, 1.0, DType::Float32, &g); },
                 {"trunc_normal", "low=2", "high=1"});
  expect_invalid([&] { ops::uniform({3}, 1.0, 1.0, DType::Float32, &g); }, {"uniform", "low=1", "high=1"});
  expect_invalid([&] { ops::uniform({3}, 0.0, 1.0, DType::Int64, &g); }, {"uniform", "floating", "int64"});
  expect_invalid([&] { ops::randn({3}, DType::Bool, &g); }, {"normal", "floating", "bool"});
  expect_invalid([&] { ops::bernoulli({3}, 1.5, DType::Float32, &g); }, {"bernoulli", "p", "1.5"});
  expect_invalid([&] { ops::bernoulli({3}, -0.1, DType::Float32, &g); }, {"bernoulli", "-0.1"});
  expect_invalid([&] { ops::bernoulli({3}, std::nan(""), DType::Float32, &g); }, {"bernoulli", "nan"});
  expect_invalid([&] { ops::randperm(-1, &g); }, {"randperm", "-1"});
  expect_invalid([&] { ops::randint(5, 5, {3}, &g); }, {"randint", "low=5", "high=5"});
  expect_invalid([&] { ops::randint(6, 2, {3}, &g); }, {"randint", "low=6", "high=2"});
  EXPECT_EQ(g.state().offset, 0u);
}

}  // namespace
