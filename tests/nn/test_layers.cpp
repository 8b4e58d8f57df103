// Layers against hand-computed or float64 references: Linear, LayerNorm, Embedding (and its gradient),
// Dropout, DropPath (per sample and per packed clip), GELU, Mlp, the init functions, patchify and the
// VisionTransformer's shapes and parameter names.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "nn/token_layout.h"
#include "nn/vit.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;

void expect_near_all(const std::vector<float>& got, const std::vector<double>& expected, double tol,
                     const std::string& what = "") {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], expected[i], tol * std::max(1.0, std::abs(expected[i]))) << what << " at " << i;
  }
}

struct Stats {
  double mean, std, min, max;
};
Stats stats_of(const std::vector<float>& v) {
  double s = 0, s2 = 0, lo = v[0], hi = v[0];
  for (float x : v) {
    s += x;
    lo = std::min<double>(lo, x);
    hi = std::max<double>(hi, x);
  }
  double mean = s / v.size();
  for (float x : v) s2 += (x - mean) * (x - mean);
  return {mean, std::sqrt(s2 / (v.size() - 1)), lo, hi};
}

// ---------------------------------------------------------------- Linear

TEST(Linear, HandComputedTwoByThree) {
  Linear layer(3, 2);
  EXPECT_EQ(layer.weight.shape(), (Shape{2, 3}));
  EXPECT_EQ(layer.bias.shape(), (Shape{2}));
  ops::copy_(layer.weight, ops::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  ops::copy_(layer.bias, ops::from_vector<float>({0.5f, -1.0f}));
  Tensor x = ops::from_vector<float>({1, 0, -1, 2, 1, 0}, {2, 3});
  Tensor y = layer.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 2}));
  // row 0: [1-3+0.5, 4-6-1]; row 1: [2+2+0.5, 8+5-1]
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-1.5f, -3.0f, 4.5f, 12.0f}));

  // d sum(y) / dW = sum over rows of x (one row per output), d/db = number of rows.
  sum(y).backward();
  EXPECT_EQ(layer.weight.grad().to_vector<float>(), (std::vector<float>{3, 1, -1, 3, 1, -1}));
  EXPECT_EQ(layer.bias.grad().to_vector<float>(), (std::vector<float>{2, 2}));
}

TEST(Linear, LeadingAxesAndNoBias) {
  Linear layer(3, 2, false);
  ops::copy_(layer.weight, ops::from_vector<float>({1, 0, 0, 1, 1, 1}, {2, 3}));
  Tensor x = ops::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  Tensor y = layer.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 6, 4, 15, 7, 24, 10, 33}));
  EXPECT_THROW(layer.forward(ops::zeros({2, 4})), std::invalid_argument);
}

TEST(Linear, DefaultInitWithinOneOverSqrtFanIn) {
  manual_seed(0);
  Linear layer(16, 64);
  double bound = 1.0 / 4.0;
  for (float v : layer.weight.to_vector<float>()) EXPECT_LE(std::abs(v), bound);
  for (float v : layer.bias.to_vector<float>()) EXPECT_LE(std::abs(v), bound);
  Stats s = stats_of(layer.weight.to_vector<float>());
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.1 * bound);
}

// ---------------------------------------------------------------- LayerNorm

TEST(LayerNorm, MatchesAFloat64Loop) {
  const int64_t rows = 5, dim = 7;
  const double eps = 1e-5;
  manual_seed(11);
  Tensor x = ops::normal({rows, dim}, 0.7, 2.0);
  LayerNorm norm(dim, eps);
  EXPECT_EQ(norm.weight.to_vector<float>(), std::vector<float>(dim, 1.0f));
  EXPECT_EQ(norm.bias.to_vector<float>(), std::vector<float>(dim, 0.0f));
  ops::copy_(norm.weight, ops::randn({dim}));
  ops::copy_(norm.bias, ops::randn({dim}));
  Tensor y = norm.forward(x);
  ASSERT_EQ(y.shape(), x.shape());

  auto xv = x.to_vector<float>();
  auto wv = norm.weight.to_vector<float>();
  auto bv = norm.bias.to_vector<float>();
  std::vector<double> expected;
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < dim; ++c) mean += xv[r * dim + c];
    mean /= dim;
    for (int64_t c = 0; c < dim; ++c) var += (xv[r * dim + c] - mean) * (xv[r * dim + c] - mean);
    var /= dim;  // population variance, as torch
    for (int64_t c = 0; c < dim; ++c) {
      expected.push_back((xv[r * dim + c] - mean) / std::sqrt(var + eps) * wv[c] + bv[c]);
    }
  }
  expect_near_all(y.to_vector<float>(), expected, 1e-5, "layer_norm");

  // Three axes: normalises the last one only.
  Tensor x3 = reshape(x, {1, rows, dim});
  expect_near_all(norm.forward(x3).to_vector<float>(), expected, 1e-5, "layer_norm 3-D");
  EXPECT_THROW(norm.forward(ops::zeros({2, 6})), std::invalid_argument);
}

TEST(LayerNorm, WithoutAffineHasNoParameters) {
  LayerNorm norm(4, 1e-6, false);
  EXPECT_TRUE(norm.named_parameters().empty());
  Tensor y = norm.forward(ops::from_vector<float>({1, 2, 3, 4}, {1, 4}));
  // mean 2.5, population var 1.25
  double s = std::sqrt(1.25 + 1e-6);
  expect_near_all(y.to_vector<float>(), {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, 1e-6);
}

// ---------------------------------------------------------------- Embedding

TEST(Embedding, LooksUpRowsAndAccumulatesGradientsOfRepeatedIndices) {
  Embedding emb(5, 3);
  EXPECT_EQ(emb.weight.shape(), (Shape{5, 3}));
  std::vector<float> table;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 3; ++j) table.push_back(10.0f * i + j);
  ops::copy_(emb.weight, ops::from_vector<float>(table, {5, 3}));

  std::vector<int64_t> idx = {0, 4, 2, 2, 2, 1};
  Tensor out = emb.forward(ops::from_vector<int64_t>(idx, {2, 3}));
  ASSERT_EQ(out.shape(), (Shape{2, 3, 3}));
  std::vector<float> expected;
  for (int64_t i : idx)
    for (int j = 0; j < 3; ++j) expected.push_back(10.0f * i + j);
  EXPECT_EQ(out.to_vector<float>(), expected);

  // loss = sum(out * G): row r of d/dweight is the sum of G's rows whose index is r.
  std::vector<float> g(18);
  for (size_t i = 0; i < g.size(); ++i) g[i] = 0.5f * static_cast<float>(i) - 3.0f;
  sum(out * ops::from_vector<float>(g, {2, 3, 3})).backward();
  std::vector<double> grad(15, 0.0);
  for (size_t k = 0; k < idx.size(); ++k)
    for (int j = 0; j < 3; ++j) grad[idx[k] * 3 + j] += g[k * 3 + j];
  expect_near_all(emb.weight.grad().to_vector<float>(), grad, 1e-6, "embedding grad");
  // Row 3 is never used: zero gradient. Row 2 is used three times.
  for (int j = 0; j < 3; ++j) EXPECT_EQ(emb.weight.grad().to_vector<float>()[9 + j], 0.0f);
  EXPECT_FLOAT_EQ(emb.weight.grad().to_vector<float>()[6], g[6] + g[9] + g[12]);
}

TEST(Embedding, AcceptsInt32AndRejectsAnOutOfRangeIndex) {
  Embedding emb(4, 2);
  Tensor out = emb.forward(ops::from_vector<int32_t>({3, 0}));
  ASSERT_EQ(out.shape(), (Shape{2, 2}));
  auto w = emb.weight.to_vector<float>();
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{w[6], w[7], w[0], w[1]}));
  try {
    emb.forward(ops::from_vector<int64_t>({1, 4}));
    ADD_FAILURE() << "index 4 of a table of 4 rows was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("4"), std::string::npos) << e.what();
  }
  EXPECT_ANY_THROW(emb.forward(ops::from_vector<int64_t>({-1})));
}

TEST(Embedding, DefaultInitIsStandardNormal) {
  manual_seed(5);
  Embedding emb(200, 100);
  Stats s = stats_of(emb.weight.to_vector<float>());
  EXPECT_NEAR(s.mean, 0.0, 0.03);
  EXPECT_NEAR(s.std, 1.0, 0.03);
}

// ---------------------------------------------------------------- Dropout

TEST(Dropout, EvalAndZeroProbabilityAreTheIdentity) {
  Tensor x = ops::randn({50, 20});
  auto xv = x.to_vector<float>();
  Dropout drop(0.5);
  EXPECT_TRUE(drop.is_training());
  drop.eval();
  EXPECT_EQ(drop.forward(x).to_vector<float>(), xv);
  Dropout none(0.0);
  EXPECT_EQ(none.forward(x).to_vector<float>(), xv);
  EXPECT_EQ(dropout(x, 0.7, false).to_vector<float>(), xv);
}

TEST(Dropout, TrainingKeepsAboutOneMinusPAndScalesByItsInverse) {
  const int64_t n = 100000;
  for (double p : {0.1, 0.5}) {
    manual_seed(21);
    Tensor x = ops::full({n}, 2.0);
    Dropout drop(p);
    auto y = drop.forward(x).to_vector<float>();
    int64_t kept = 0;
    const float scaled = static_cast<float>(2.0 / (1.0 - p));
    for (float v : y) {
      if (v == 0.0f) continue;
      ++kept;
      ASSERT_NEAR(v, scaled, 1e-5) << "p = " << p;
    }
    // The kept fraction has std sqrt(p(1-p)/n) <= 0.0016: 0.01 is over six of them.
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 0.01) << "p = " << p;
  }
}

TEST(Dropout, GradientFlowsThroughKeptElementsOnly) {
  manual_seed(3);
  Tensor x = ops::ones({1000}).set_requires_grad();
  Tensor y = dropout(x, 0.25, true);
  sum(y).backward();
  auto yv = y.to_vector<float>();
  auto gv = x.grad().to_vector<float>();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_FLOAT_EQ(gv[i], yv[i]);  // x = 1: grad = mask / (1-p) = y
}

TEST(Dropout, SeededMasksAreReproducible) {
  Tensor x = ops::ones({64});
  manual_seed(9);
  auto a = dropout(x, 0.5, true).to_vector<float>();
  manual_seed(9);
  auto b = dropout(x, 0.5, true).to_vector<float>();
  auto c = dropout(x, 0.5, true).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(b, c);
  Generator g1(4), g2(4);
  EXPECT_EQ(dropout(x, 0.5, true, &g1).to_vector<float>(), dropout(x, 0.5, true, &g2).to_vector<float>());
}

TEST(Dropout, RejectsProbabilitiesOutsideZeroToOne) {
  EXPECT_THROW(Dropout(1.0), std::invalid_argument);
  EXPECT_THROW(Dropout(-0.1), std::invalid_argument);
  EXPECT_THROW(DropPath(1.5), std::invalid_argument);
  EXPECT_THROW(dropout(ops::ones({2}), 1.0, true), std::invalid_argument);
}

// ---------------------------------------------------------------- DropPath

TEST(DropPath, DropsOrScalesWholeSamples) {
  const int64_t B = 400;
  const double p = 0.5;
  manual_seed(13);
  Tensor x = ops::ones({B, 3, 4});
  DropPath layer(p);
  auto y = layer.forward(x).to_vector<float>();
  int64_t kept = 0;
  for (int64_t b = 0; b < B; ++b) {
    float first = y[b * 12];
    EXPECT_TRUE(first == 0.0f || std::abs(first - 2.0f) < 1e-6) << first;
    for (int64_t i = 0; i < 12; ++i) ASSERT_EQ(y[b * 12 + i], first) << "sample " << b << " is not all one value";
    kept += first != 0.0f;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, B);
  EXPECT_NEAR(static_cast<double>(kept) / B, 1.0 - p, 0.1);

  layer.eval();
  EXPECT_EQ(layer.forward(x).to_vector<float>(), std::vector<float>(B * 12, 1.0f));
  DropPath off(0.0);
  EXPECT_EQ(off.forward(x).to_vector<float>(), std::vector<float>(B * 12, 1.0f));
}

TEST(DropPath, PackedLayoutDropsWholeClips) {
  // 120 clips of 1..5 tokens each: every clip's rows are all zero or all scaled, never mixed.
  std::vector<int64_t> counts;
  for (int i = 0; i < 120; ++i) counts.push_back(1 + i % 5);
  TokenLayout layout = TokenLayout::from_counts(counts);
  const int64_t D = 3, N = layout.total_tokens();
  const double p = 0.3;
  manual_seed(17);
  Tensor x = ops::ones({N, D});
  DropPath layer(p);
  auto y = layer.forward(x, layout).to_vector<float>();
  int64_t kept = 0;
  const float scaled = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    int64_t start = layout.clip_begin(b);
    float first = y[start * D];
    EXPECT_TRUE(first == 0.0f || std::abs(first - scaled) < 1e-6) << first;
    for (int64_t i = 0; i < layout.clip_tokens(b) * D; ++i) ASSERT_EQ(y[start * D + i], first) << "clip " << b;
    kept += first != 0.0f;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, layout.batch_size());
  layer.eval();
  EXPECT_EQ(layer.forward(x, layout).to_vector<float>(), std::vector<float>(N * D, 1.0f));
}

// ---------------------------------------------------------------- GELU and Mlp

TEST(GELU, BothFormsAtKnownValues) {
  std::vector<float> xs = {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f};
  Tensor x = ops::from_vector<float>(xs);
  std::vector<double> exact, approx;
  for (double v : xs) {
    exact.push_back(0.5 * v * (1.0 + std::erf(v / std::numbers::sqrt2)));
    approx.push_back(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v))));
  }
  expect_near_all(GELU().forward(x).to_vector<float>(), exact, 1e-6, "gelu");
  expect_near_all(GELU(true).forward(x).to_vector<float>(), approx, 1e-6, "gelu_tanh");
  // Literal checks of the textbook values.
  EXPECT_NEAR(GELU().forward(x).to_vector<float>()[5], 0.8413447460685429, 1e-6);
  EXPECT_NEAR(GELU().forward(x).to_vector<float>()[1], -0.15865525393145707, 1e-6);
  EXPECT_NEAR(GELU(true).forward(x).to_vector<float>()[5], 0.8411919906082768, 1e-6);
}

TEST(Mlp, ShapesAndNames) {
  Mlp mlp(8, 32, 0.0);
  std::vector<std::string> names;
  for (auto& [name, _] : mlp.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(mlp.fc1->weight.shape(), (Shape{32, 8}));
  EXPECT_EQ(mlp.fc2->weight.shape(), (Shape{8, 32}));
  EXPECT_EQ(mlp.forward(ops::randn({5, 8})).shape(), (Shape{5, 8}));
  EXPECT_EQ(mlp.forward(ops::randn({2, 3, 8})).shape(), (Shape{2, 3, 8}));

  // Without dropout, the block is fc2(gelu(fc1(x))).
  Tensor x = ops::randn({4, 8});
  Tensor by_hand = mlp.fc2->forward(gelu(mlp.fc1->forward(x)));
  EXPECT_EQ(mlp.forward(x).to_vector<float>(), by_hand.to_vector<float>());
}

// ---------------------------------------------------------------- init

TEST(Init, FansFollowPyTorch) {
  init::Fans f = init::fans_of({16, 3, 4, 4});
  EXPECT_EQ(f.fan_in, 48);
  EXPECT_EQ(f.fan_out, 256);
  f = init::fans_of({7, 5});
  EXPECT_EQ(f.fan_in, 5);
  EXPECT_EQ(f.fan_out, 7);
  EXPECT_THROW(init::fans_of({5}), std::invalid_argument);
}

TEST(Init, XavierAndKaimingBoundsAndStd) {
  manual_seed(31);
  const int64_t out = 256, in = 128;  // 32768 draws: a sample std within 2% of the true one
  Tensor w = ops::empty({out, in});

  double xb = std::sqrt(6.0 / (in + out));
  init::xavier_uniform_(w);
  Stats s = stats_of(w.to_vector<float>());
  EXPECT_LE(s.max, xb);
  EXPECT_GE(s.min, -xb);
  EXPECT_GT(s.max, 0.99 * xb);
  EXPECT_NEAR(s.std, xb / std::sqrt(3.0), 0.02 * xb);
  EXPECT_NEAR(s.mean, 0.0, 0.01 * xb);

  init::xavier_uniform_(w, 2.0);
  EXPECT_LE(stats_of(w.to_vector<float>()).max, 2.0 * xb);
  EXPECT_GT(stats_of(w.to_vector<float>()).max, 1.98 * xb);

  init::xavier_normal_(w);
  s = stats_of(w.to_vector<float>());
  EXPECT_NEAR(s.std, std::sqrt(2.0 / (in + out)), 0.02 * std::sqrt(2.0 / (in + out)));

  double kb = std::sqrt(2.0) * std::sqrt(3.0 / in);
  init::kaiming_uniform_(w);
  s = stats_of(w.to_vector<float>());
  EXPECT_LE(s.max, kb);
  EXPECT_GE(s.min, -kb);
  EXPECT_GT(s.max, 0.99 * kb);
  EXPECT_NEAR(s.std, kb / std::sqrt(3.0), 0.02 * kb);

  double ka = std::sqrt(2.0 / (1.0 + 0.25)) * std::sqrt(3.0 / in);  // leaky slope a = 0.5
  init::kaiming_uniform_(w, 0.5);
  s = stats_of(w.to_vector<float>());
  EXPECT_LE(s.max, ka);
  EXPECT_GT(s.max, 0.99 * ka);

  init::kaiming_normal_(w);
  s = stats_of(w.to_vector<float>());
  EXPECT_NEAR(s.std, std::sqrt(2.0 / in), 0.02 * std::sqrt(2.0 / in));

  // Conv-shaped weights use the receptive field: fan_in = 3*4*4 = 48.
  Tensor conv = ops::empty({64, 3, 4, 4});
  init::kaiming_uniform_(conv);
  EXPECT_LE(stats_of(conv.to_vector<float>()).max, std::sqrt(6.0 / 48));
  EXPECT_GT(stats_of(conv.to_vector<float>()).max, 0.98 * std::sqrt(6.0 / 48));
}

TEST(Init, TruncNormalStaysWithinBoundsWithTheTruncatedStd) {
  manual_seed(41);
  Tensor w = ops::empty({40000});
  init::trunc_normal_(w, 1.0, 0.0, -1.0, 1.0);
  Stats s = stats_of(w.to_vector<float>());
  EXPECT_GE(s.min, -1.0);
  EXPECT_LE(s.max, 1.0);
  EXPECT_GT(s.max, 0.99);
  // Var of N(0,1) cut to [-1, 1]: 1 - 2 phi(1) / (Phi(1) - Phi(-1)).
  double phi1 = std::exp(-0.5) / std::sqrt(2.0 * std::numbers::pi);
  double z = std::erf(1.0 / std::numbers::sqrt2);
  double truncated_std = std::sqrt(1.0 - 2.0 * phi1 / z);
  EXPECT_NEAR(s.std, truncated_std, 0.02 * truncated_std);
  EXPECT_NEAR(s.mean, 0.0, 0.02);

  // ViT's default: std 0.02 cut at +-2 (absolute), i.e. nothing is cut in practice; and a shifted window.
  init::trunc_normal_(w);
  s = stats_of(w.to_vector<float>());
  EXPECT_NEAR(s.std, 0.02, 0.001);
  init::trunc_normal_(w, 1.0, 3.0, 2.5, 4.0);
  s = stats_of(w.to_vector<float>());
  EXPECT_GE(s.min, 2.5);
  EXPECT_LE(s.max, 4.0);
}

TEST(Init, SeededReproducibility) {
  Tensor a = ops::empty({10, 10}), b = ops::empty({10, 10});
  manual_seed(123);
  init::xavier_uniform_(a);
  manual_seed(123);
  init::xavier_uniform_(b);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  init::xavier_uniform_(b);  // the stream moved on
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  manual_seed(124);
  init::xavier_uniform_(b);
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());

  Generator g1(77), g2(77);
  init::trunc_normal_(a, 0.5, 0.0, -1.0, 1.0, &g1);
  init::trunc_normal_(b, 0.5, 0.0, -1.0, 1.0, &g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());

  // Whole models too: the same seed builds the same weights.
  manual_seed(5);
  Mlp m1(4, 8);
  manual_seed(5);
  Mlp m2(4, 8);
  EXPECT_EQ(m1.fc1->weight.to_vector<float>(), m2.fc1->weight.to_vector<float>());
  EXPECT_EQ(m1.fc2->bias.to_vector<float>(), m2.fc2->bias.to_vector<float>());

  init::constant_(a, 2.5);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(100, 2.5f));
  init::zeros_(a);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(100, 0.0f));
  init::ones_(a);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(100, 1.0f));
}

// ---------------------------------------------------------------- patchify and ViT

TEST(Patchify, MatchesAHandIndexedLoop) {
  const int64_t B = 2, C = 3, H = 8, W = 12, p = 4, gh = H / p, gw = W / p;
  std::vector<float> pixels(B * C * H * W);
  std::iota(pixels.begin(), pixels.end(), 0.0f);
  Tensor images = ops::from_vector<float>(pixels, {B, C, H, W});
  Tensor patches = patchify(images, p);
  ASSERT_EQ(patches.shape(), (Shape{B, gh * gw, C * p * p}));
  auto got = patches.to_vector<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t py = 0; py < gh; ++py)
      for (int64_t px = 0; px < gw; ++px)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = 0; y < p; ++y)
            for (int64_t x = 0; x < p; ++x) {
              int64_t patch = py * gw + px, feature = (c * p + y) * p + x;
              float expected = pixels[((b * C + c) * H + py * p + y) * W + px * p + x];
              ASSERT_EQ(got[(b * gh * gw + patch) * C * p * p + feature], expected)
                  << "b " << b << " patch " << patch << " feature " << feature;
            }
  EXPECT_THROW(patchify(ops::zeros({1, 3, 8, 10}), 4), std::invalid_argument);
  EXPECT_THROW(patchify(ops::zeros({3, 8, 8}), 4), std::invalid_argument);
}

TEST(PatchEmbed, EqualsAConvWithKernelAndStrideP) {
  // One output channel: out[b, patch] = sum_{c,y,x} weight[0,c,y,x] * image[b,c,py*p+y,px*p+x] + bias.
  const int64_t C = 2, p = 2, S = 4;
  PatchEmbed embed(C, p, 1);
  EXPECT_EQ(embed.proj->weight.shape(), (Shape{1, C, p, p}));
  manual_seed(8);
  Tensor images = ops::randn({1, C, S, S});
  auto img = images.to_vector<float>();
  auto w = embed.proj->weight.to_vector<float>();
  double bias = embed.proj->bias.to_vector<float>()[0];
  auto got = embed.forward(images).to_vector<float>();
  ASSERT_EQ(got.size(), 4u);
  for (int64_t py = 0; py < S / p; ++py)
    for (int64_t px = 0; px < S / p; ++px) {
      double acc = bias;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < p; ++y)
          for (int64_t x = 0; x < p; ++x) acc += w[(c * p + y) * p + x] * img[(c * S + py * p + y) * S + px * p + x];
      EXPECT_NEAR(got[py * (S / p) + px], acc, 1e-5);
    }
}

TEST(VisionTransformer, OutputShapeAndTimmParameterNames) {
  ViTConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.channels = 3;
  c.classes = 5;
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  manual_seed(0);
  VisionTransformer vit(c);
  Tensor logits = vit.forward(ops::randn({3, 3, 8, 8}));
  EXPECT_EQ(logits.shape(), (Shape{3, 5}));

  std::vector<std::string> names;
  std::map<std::string, Shape> shapes;
  for (auto& [name, t] : vit.named_parameters()) {
    names.push_back(name);
    shapes[name] = t.shape();
  }
  std::vector<std::string> expected = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"};
  for (int b = 0; b < 2; ++b) {
    std::string pre = "blocks." + std::to_string(b) + ".";
    for (const char* n : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                          "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                          "mlp.fc2.weight", "mlp.fc2.bias"}) {
      expected.push_back(pre + n);
    }
  }
  for (const char* n : {"norm.weight", "norm.bias", "head.weight", "head.bias"}) expected.push_back(n);
  EXPECT_EQ(names, expected);
  EXPECT_EQ(shapes["patch_embed.proj.weight"], (Shape{16, 3, 4, 4}));
  EXPECT_EQ(shapes["patch_embed.proj.bias"], (Shape{16}));
  EXPECT_EQ(shapes["cls_token"], (Shape{1, 1, 16}));
  EXPECT_EQ(shapes["pos_embed"], (Shape{1, 5, 16}));  // 4 patches + the class token
  EXPECT_EQ(shapes["blocks.1.mlp.fc1.weight"], (Shape{64, 16}));
  EXPECT_EQ(shapes["head.weight"], (Shape{5, 16}));

  // timm's init: zero head bias, small linear weights.
  for (float v : vit.head->bias.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  for (float v : vit.head->weight.to_vector<float>()) EXPECT_LE(std::abs(v), 0.1f);
}

TEST(VisionTransformer, ImagesInABatchDoNotInteract) {
  ViTConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.classes = 3;
  c.dim = 8;
  c.depth = 1;
  c.heads = 2;
  manual_seed(1);
  VisionTransformer vit(c);
  vit.eval();
  Tensor images = ops::randn({2, 3, 8, 8});
  auto both = vit.forward(images).to_vector<float>();
  auto first = vit.forward(narrow(images, 0, 0, 1)).to_vector<float>();
  auto second = vit.forward(narrow(images, 0, 1, 1)).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(both[i], first[i], 1e-5);
    EXPECT_NEAR(both[3 + i], second[i], 1e-5);
  }
  EXPECT_THROW(
      {
        ViTConfig bad = c;
        bad.image_size = 10;
        VisionTransformer v(bad);
      },
      std::invalid_argument);
}

}  // namespace
