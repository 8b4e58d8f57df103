// Orthoformer (nn/attention/orthoformer.h): the greedy selection on hand-made rows; stage 1 against a
// float64 loop given the landmarks; rows are convex combinations (v = 1 gives 1); the layer on ragged
// RLT-like batches, packed == each clip alone; gradcheck with the selection fixed.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/heads.h"
#include "nn/attention/orthoformer.h"
#include "nn/attention/registry.h"
#include "tensor/random.h"
#include "trajectory_testing.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::clip_alone;
using glance::testing::clip_ids;
using glance::testing::expect_all_close;
using glance::testing::rlt_like_layout;

std::shared_ptr<OrthoformerAttention> make_layer(int64_t dim, int64_t heads, Grid grid,
                                                 std::map<std::string, double> options = {}) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.grid = grid, c.options = std::move(options);
  manual_seed(2);
  auto layer = std::dynamic_pointer_cast<OrthoformerAttention>(make_attention("orthoformer", c));
  EXPECT_TRUE(layer != nullptr);
  return layer;
}

TEST(VariantOrthoformer, GreedySelectionTakesOneRowPerAxis) {
  // Rows e_i, 2 e_i, -e_i for every axis i of R^4, interleaved: with R = 4 prototypes the greedy picks
  // exactly one row per axis, whichever row it starts from.
  const int64_t dim = 4;
  std::vector<double> rows;
  std::vector<int64_t> axis_of_row;
  for (double factor : {1.0, 2.0, -1.0})
    for (int64_t i = 0; i < dim; ++i) {
      for (int64_t c = 0; c < dim; ++c) rows.push_back(c == i ? factor : 0.0);
      axis_of_row.push_back(i);
    }
  Tensor t = ops::from_vector(rows, Shape{3 * dim, dim});
  for (int64_t first = 0; first < 3 * dim; ++first) {
    const std::vector<int64_t> chosen = orthogonal_prototypes(t, dim, first);
    ASSERT_EQ(chosen.size(), size_t(dim));
    EXPECT_TRUE(std::is_sorted(chosen.begin(), chosen.end()));
    EXPECT_NE(std::find(chosen.begin(), chosen.end(), first), chosen.end()) << "first " << first;
    std::set<int64_t> axes;
    for (int64_t r : chosen) axes.insert(axis_of_row[r]);
    EXPECT_EQ(axes.size(), size_t(dim)) << "first " << first;
  }
}

TEST(VariantOrthoformer, GreedySelectionOnAHandExample) {
  // From row 0 = (1, 0): |cos| to rows 1..3 is 0.8, 0.6, 1 (row 3 is -row 0): pick row 2 (0.6, 0.8)...
  // whose |cos| to row 0 is 0.6. Then max(|cos| to row 0, |cos| to row 2) is 0.96 for row 1, 1 for row 3:
  // row 1. Clamped to the row count: all four.
  Tensor rows = ops::from_vector(std::vector<double>{1, 0, 0.8, 0.6, 0.6, 0.8, -2, 0}, Shape{4, 2});
  EXPECT_EQ(orthogonal_prototypes(rows, 2, 0), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(orthogonal_prototypes(rows, 3, 0), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(orthogonal_prototypes(rows, 9, 0), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(orthogonal_prototypes(rows, 2, 3), (std::vector<int64_t>{2, 3}));  // from -2 e_0
}

TEST(VariantOrthoformer, RowsAreConvexCombinationsSoOnesStayOnes) {
  // K1 and each frame's K2 are row-stochastic, so with v = 1 every trajectory token is 1 (0 where the
  // clip lacks the frame).
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(3, Grid{4, 2, 3}, 0.2);
  const auto present = glance::testing::frames_present(layout);
  Generator gen(13);
  const int64_t H = 2, d = 4, N = layout.total_tokens(), T = 4;
  Tensor q = ops::randn({H, N, d}, DType::Float32, &gen) * 2.0, k = ops::randn({H, N, d}, DType::Float32, &gen) * 2.0;
  Tensor v = ops::ones({H, N, d});
  const auto landmarks = orthoformer_landmarks(q * 0.5, layout, 3, 0);
  const std::vector<double> y =
      as_doubles(orthoformer_trajectory_tokens(q, k, v, landmarks, layout, frame_keys(layout)));
  std::vector<double> expected;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t f = 0; f < T; ++f) expected.insert(expected.end(), d, present[i][f] ? 1.0 : 0.0);
  expect_all_close(y, expected, 1e-6, "v = 1");
}

TEST(VariantOrthoformer, StageOneMatchesAFloat64LoopGivenTheLandmarks) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 21);
  Generator gen(14);
  const int64_t H = 2, d = 4, N = layout.total_tokens(), T = 3, R = 3;
  Tensor q = ops::randn({H, N, d}, DType::Float64, &gen), k = ops::randn({H, N, d}, DType::Float64, &gen);
  Tensor v = ops::randn({H, N, d}, DType::Float64, &gen);
  const double quarter = std::pow(double(d), -0.25);
  const auto landmarks = orthoformer_landmarks(q * quarter, layout, R, 0);
  const std::vector<double> got =
      as_doubles(orthoformer_trajectory_tokens(q, k, v, landmarks, layout, frame_keys(layout)));
  // The loop: K1[i, l] = softmax_l(q~_i . P_l), K2[l, f, j] = softmax over frame-f keys j of P_l . k~_j.
  const std::vector<double> Q = as_doubles(q), K = as_doubles(k), V = as_doubles(v);
  const std::vector<int64_t> clip = clip_ids(layout);
  const std::vector<int32_t> t = layout.t().to_vector<int32_t>();
  std::vector<double> expected(static_cast<size_t>(H * N * T * d), 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < N; ++i) {
      const std::vector<double> P = as_doubles(select(landmarks[clip[i]], 0, h));  // [R, d]
      std::vector<double> k1(R);
      double z1 = 0;
      for (int64_t l = 0; l < R; ++l) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += Q[(h * N + i) * d + c] * quarter * P[l * d + c];
        z1 += (k1[l] = std::exp(dot));
      }
      for (int64_t l = 0; l < R; ++l)
        for (int64_t f = 0; f < T; ++f) {
          std::vector<std::pair<int64_t, double>> e;
          double z2 = 0;
          for (int64_t j = 0; j < N; ++j) {
            if (clip[j] != clip[i] || t[j] != f) continue;
            double dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += P[l * d + c] * K[(h * N + j) * d + c] * quarter;
            e.push_back({j, std::exp(dot)});
            z2 += e.back().second;
          }
          for (auto [j, w] : e)
            for (int64_t c = 0; c < d; ++c)
              expected[((h * N + i) * T + f) * d + c] += k1[l] / z1 * w / z2 * V[(h * N + j) * d + c];
        }
    }
  expect_all_close(got, expected, 1e-12, "stage 1 through landmarks");
  // The landmarks are rows of the scaled q of their clip, R per head.
  for (int64_t b = 0; b < 2; ++b) EXPECT_EQ(landmarks[b].shape(), (Shape{H, R, d}));
}

TEST(VariantOrthoformer, LandmarksAreTheChosenScaledQueryRows) {
  const TokenLayout layout = rlt_like_layout(2, Grid{2, 2, 2}, 0.5, 3);
  Generator gen(15);
  const int64_t H = 2, d = 3, N = layout.total_tokens();
  Tensor q = ops::randn({H, N, d}, DType::Float64, &gen);
  for (int64_t seed : {0, 5}) {
    const auto landmarks = orthoformer_landmarks(q, layout, 3, seed);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
        Tensor rows = narrow(select(q, 0, h), 0, first, L);
        const auto chosen = orthogonal_prototypes(rows, 3, first_prototype(seed, h, L));
        EXPECT_EQ(as_doubles(select(landmarks[b], 0, h)), as_doubles(index_select(rows, 0, ops::from_vector(chosen))));
      }
  }
  EXPECT_EQ(first_prototype(0, 1, 10), 0);
  const int64_t picked = first_prototype(7, 1, 10);
  EXPECT_TRUE(picked >= 0 && picked < 10);
  EXPECT_EQ(first_prototype(7, 1, 10), picked);  // deterministic
}

TEST(VariantOrthoformer, RltLayerRunsAndPackedEqualsEachClipAlone) {
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(4, Grid{4, 3, 3}, 0.3);
  for (double seed : {0.0, 3.0}) {
    auto layer = make_layer(16, 4, layout.grid(), {{"prototypes", 5}, {"seed", seed}});
    Generator gen(16);
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const std::vector<double> packed = as_doubles(layer->forward(x, layout));
    for (double value : packed) ASSERT_TRUE(std::isfinite(value));
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
      const std::vector<double> alone = as_doubles(layer->forward(narrow(x, 0, first, L), clip_alone(layout, b)));
      expect_all_close(std::vector<double>(packed.begin() + first * 16, packed.begin() + (first + L) * 16), alone, 1e-6,
                       "clip " + std::to_string(b));
    }
  }
}

TEST(VariantOrthoformer, StageTwoIsTrajectoryAttentions) {
  // The layer = trajectory attention's stage 2 (float64 loop) applied to the Orthoformer tokens.
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(2, Grid{3, 2, 2}, 0.2);
  auto layer = make_layer(8, 2, layout.grid(), {{"prototypes", 3}, {"original_code", 0}});
  glance::testing::parameters_to_float64(*layer);
  Generator gen(17);
  Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
  QKV h = project_qkv(*layer->qkv, x, 2);
  const FrameKeys frames = frame_keys(layout);
  const Tensor y = layer->trajectories(h.q, h.k, h.v, layout, frames);
  expect_all_close(as_doubles(layer->forward(x, layout)),
                   glance::testing::trajectory_stage2_f64(as_doubles(y), *layer, layout), 1e-12, "stage 2");
}

TEST(VariantOrthoformer, GradcheckWithTheSelectionFixed) {
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(2, Grid{3, 1, 2}, 0.3);
  Generator gen(18);
  const int64_t H = 2, d = 3, N = layout.total_tokens();
  std::vector<Tensor> inputs;
  for (int i = 0; i < 3; ++i) inputs.push_back(ops::randn({H, N, d}, DType::Float64, &gen).set_requires_grad(true));
  const auto landmarks = orthoformer_landmarks(inputs[0].detach() * std::pow(double(d), -0.25), layout, 2, 0);
  const FrameKeys frames = frame_keys(layout);
  auto result = autograd::gradcheck(
      [&](const std::vector<Tensor>& x) {
        return orthoformer_trajectory_tokens(x[0], x[1], x[2], landmarks, layout, frames);
      },
      inputs);
  EXPECT_TRUE(result.ok) << result.message;
}

TEST(VariantOrthoformer, EveryWeightGetsAFiniteGradient) {
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(3, Grid{4, 2, 2}, 0.3);
  auto layer = make_layer(8, 2, layout.grid(), {{"original_code", 0}});
  Generator gen(19);
  Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen).set_requires_grad(true);
  sum(layer->forward(x, layout) * ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen)).backward();
  for (auto& [name, param] : layer->named_parameters()) {
    ASSERT_TRUE(param.grad().defined()) << name;
    double norm = 0;
    for (double g : as_doubles(param.grad())) {
      ASSERT_TRUE(std::isfinite(g)) << name;
      norm += g * g;
    }
    EXPECT_GT(norm, 0) << name;
  }
  ASSERT_TRUE(x.grad().defined());
}

TEST(VariantOrthoformer, BadInputAndOptionsAreNamed) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  for (auto [name, value] : std::vector<std::pair<std::string, double>>{
           {"prototypes", 0}, {"seed", -1}, {"seed", 1.5}, {"original_code", 3}}) {
    c.options = {{name, value}};
    try {
      make_attention("orthoformer", c);
      ADD_FAILURE() << "no exception for " << name << " = " << value;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  auto layer = make_layer(8, 2, Grid{2, 2, 2});
  try {
    layer->forward(ops::zeros({7, 8}), TokenLayout::dense(1, Grid{2, 2, 2}));
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("orthoformer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[7, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(orthogonal_prototypes(ops::zeros({4, 2}), 2, 4), std::invalid_argument);
}

}  // namespace
