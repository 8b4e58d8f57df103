// Trajectory attention (nn/attention/trajectory.h): on one frame it is plain attention (then W_v with
// original_code = 0); stage 1 against a float64 loop; the whole layer against a float64 loop version on
// ragged RLT-like batches with empty frames; packed == each clip alone; gradcheck of every input and weight.
#include <gtest/gtest.h>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/heads.h"
#include "nn/attention/registry.h"
#include "nn/attention/trajectory.h"
#include "nn/transformer.h"
#include "tensor/random.h"
#include "trajectory_testing.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::clip_alone;
using glance::testing::clip_ids;
using glance::testing::expect_all_close;
using glance::testing::masked_attention_f64;
using glance::testing::rlt_like_layout;

std::shared_ptr<TrajectoryAttention> make_layer(int64_t dim, int64_t heads, Grid grid, double original_code,
                                                uint64_t seed = 1) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.grid = grid;
  c.options["original_code"] = original_code;
  manual_seed(seed);
  auto layer = std::dynamic_pointer_cast<TrajectoryAttention>(make_attention("trajectory", c));
  EXPECT_TRUE(layer != nullptr);
  return layer;
}

// Plain softmax attention of the layer's q, k, v within each clip (float64), as [N][D] (heads merged).
std::vector<double> plain_attention_merged(const TrajectoryAttention& layer, const Tensor& x,
                                           const TokenLayout& layout) {
  QKV h = project_qkv(*layer.qkv, x, layer.heads);
  const std::vector<int64_t> clip = clip_ids(layout);
  const std::vector<double> o =
      masked_attention_f64(h.q, h.k, h.v, layer.scale, [&](int64_t i, int64_t j) { return clip[i] == clip[j]; });
  const int64_t H = layer.heads, d = layer.head_dim, N = layout.total_tokens();
  std::vector<double> merged;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t hh = 0; hh < H; ++hh)
      for (int64_t c = 0; c < d; ++c) merged.push_back(o[(hh * N + i) * d + c]);
  return merged;
}

TEST(VariantTrajectory, OneFrameOriginalCodeIsPlainAttentionThenProj) {
  // With T' = 1 stage 1 is softmax attention over the clip and stage 2 averages a single trajectory
  // token with weight 1: out = proj(attention). Dense clips and ragged clips of a 1-frame grid.
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{1, 3, 3}), TokenLayout::from_counts({5, 9, 3})}) {
    auto layer = make_layer(16, 2, layout.grid(), 1);
    Generator gen(3);
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const std::vector<double> o = plain_attention_merged(*layer, x, layout);
    std::vector<double> expected;
    for (int64_t i = 0; i < layout.total_tokens(); ++i) {
      const auto row = glance::testing::linear_row_f64(*layer->proj, &o[i * 16]);
      expected.insert(expected.end(), row.begin(), row.end());
    }
    expect_all_close(as_doubles(layer->forward(x, layout)), expected, 2e-5, "T'=1, original code");
  }
}

TEST(VariantTrajectory, OneFrameFixedCodeIsAttentionThenWvThenProj) {
  // original_code = 0 aggregates v2 = W_v y: on one frame, out = proj(W_v attention + b_v).
  const TokenLayout layout = TokenLayout::from_counts({6, 4});
  auto layer = make_layer(16, 4, layout.grid(), 0);
  Generator gen(4);
  Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  const std::vector<double> o = plain_attention_merged(*layer, x, layout);
  const std::vector<double> kv_w = as_doubles(layer->proj_kv->weight), kv_b = as_doubles(layer->proj_kv->bias);
  std::vector<double> expected;
  for (int64_t i = 0; i < layout.total_tokens(); ++i) {
    std::vector<double> wv(16);
    for (int64_t r = 0; r < 16; ++r) {
      wv[r] = kv_b[16 + r];
      for (int64_t c = 0; c < 16; ++c) wv[r] += kv_w[(16 + r) * 16 + c] * o[i * 16 + c];
    }
    const auto row = glance::testing::linear_row_f64(*layer->proj, wv.data());
    expected.insert(expected.end(), row.begin(), row.end());
  }
  expect_all_close(as_doubles(layer->forward(x, layout)), expected, 2e-5, "T'=1, original_code=0");
  // And the two paths really differ there (the test would not notice a swapped flag otherwise).
  auto original = make_layer(16, 4, layout.grid(), 1);
  EXPECT_GT(std::abs(as_doubles(original->forward(x, layout))[0] - expected[0]), 1e-4);
}

TEST(VariantTrajectory, FrameKeysOfTheHeaderExample) {
  // t = 0 0 0 1 1 3 on T' = 4 (the example of trajectory.h), listed once raster-ordered.
  const TokenLayout layout({6}, ops::from_vector(std::vector<int32_t>{0, 0, 0, 1, 1, 3}),
                           ops::from_vector(std::vector<int32_t>{0, 0, 1, 0, 1, 0}),
                           ops::from_vector(std::vector<int32_t>{0, 1, 0, 0, 0, 0}),
                           ops::from_vector(std::vector<int32_t>{1, 1, 2, 3, 2, 1}), Grid{4, 2, 2});
  const FrameKeys f = frame_keys(layout);
  ASSERT_EQ(f.blocks.size(), 1u);
  const std::vector<std::pair<int64_t, int64_t>> expected = {{0, 3}, {3, 2}, {5, 0}, {5, 1}};
  for (int64_t s = 0; s < 4; ++s) {
    EXPECT_EQ(f.blocks[0][s].begin, expected[s].first) << s;
    EXPECT_EQ(f.blocks[0][s].count, expected[s].second) << s;
  }
  EXPECT_TRUE(f.already_sorted);
  EXPECT_TRUE(f.any_empty);
  EXPECT_EQ(f.own_frame.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 8, 13, 17, 23}));
  const bool* empty = f.empty.data<bool>();
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t s = 0; s < 4; ++s) EXPECT_EQ(empty[i * 4 + s], s == 2) << i << ", " << s;
}

TEST(VariantTrajectory, StageOneMatchesAFloat64Loop) {
  // Two frames, a dense clip and a ragged one: one trajectory token per (query, frame).
  for (const TokenLayout& layout : {TokenLayout::dense(1, Grid{2, 2, 2}), rlt_like_layout(3, Grid{2, 3, 2}, 0.5, 5)}) {
    Generator gen(6);
    const int64_t H = 2, d = 3, N = layout.total_tokens();
    Tensor q = ops::randn({H, N, d}, DType::Float32, &gen), k = ops::randn({H, N, d}, DType::Float32, &gen);
    Tensor v = ops::randn({H, N, d}, DType::Float32, &gen);
    Tensor y = trajectory_tokens(q, k, v, layout, frame_keys(layout), 0.7);
    ASSERT_EQ(y.shape(), (Shape{H, N, 2, d}));
    expect_all_close(
        as_doubles(y),
        glance::testing::trajectory_stage1_f64(as_doubles(q), as_doubles(k), as_doubles(v), H, d, layout, 0.7), 2e-6,
        "stage 1");
    // Each frame's slice is masked attention restricted to that frame's keys (a second formulation).
    const std::vector<int64_t> clip = clip_ids(layout);
    const std::vector<int32_t> t = layout.t().to_vector<int32_t>();
    for (int32_t f = 0; f < 2; ++f) {
      auto expected =
          masked_attention_f64(q, k, v, 0.7, [&](int64_t i, int64_t j) { return clip[i] == clip[j] && t[j] == f; });
      expect_all_close(as_doubles(select(y, 2, f)), expected, 2e-6, "frame " + std::to_string(f));
    }
  }
}

TEST(VariantTrajectory, RaggedBatchWithEmptyFramesMatchesAFloat64Loop) {
  // Whole layer in float64 against loops: an RLT-like pack where some clip kept no token of some frame.
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(3, Grid{4, 2, 2}, 0.15);
  const FrameKeys frames = frame_keys(layout);
  EXPECT_TRUE(frames.any_empty);
  for (double original : {1.0, 0.0}) {
    auto layer = make_layer(8, 2, layout.grid(), original);
    glance::testing::parameters_to_float64(*layer);
    Generator gen(8);
    Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
    const auto qkv = glance::testing::project_qkv_f64(*layer, x);
    const auto y = glance::testing::trajectory_stage1_f64(qkv.q, qkv.k, qkv.v, 2, 4, layout, layer->scale);
    Tensor got = layer->forward(x, layout);
    expect_all_close(as_doubles(got), glance::testing::trajectory_stage2_f64(y, *layer, layout), 1e-12,
                     "RLT layer, original_code=" + std::to_string(int(original)));
    for (double value : as_doubles(got)) ASSERT_TRUE(std::isfinite(value));
  }
}

TEST(VariantTrajectory, DenseBatchMatchesAFloat64Loop) {
  const TokenLayout layout = TokenLayout::dense(2, Grid{3, 2, 2});
  auto layer = make_layer(8, 2, layout.grid(), 1);
  glance::testing::parameters_to_float64(*layer);
  Generator gen(9);
  Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
  const auto qkv = glance::testing::project_qkv_f64(*layer, x);
  const auto y = glance::testing::trajectory_stage1_f64(qkv.q, qkv.k, qkv.v, 2, 4, layout, layer->scale);
  expect_all_close(as_doubles(layer->forward(x, layout)), glance::testing::trajectory_stage2_f64(y, *layer, layout),
                   1e-12, "dense layer");
}

TEST(VariantTrajectory, PackedEqualsEachClipAlone) {
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(4, Grid{4, 3, 3}, 0.3);
  for (double original : {1.0, 0.0}) {
    auto layer = make_layer(16, 4, layout.grid(), original);
    Generator gen(10);
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const std::vector<double> packed = as_doubles(layer->forward(x, layout));
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
      const std::vector<double> alone = as_doubles(layer->forward(narrow(x, 0, first, L), clip_alone(layout, b)));
      expect_all_close(std::vector<double>(packed.begin() + first * 16, packed.begin() + (first + L) * 16), alone, 1e-6,
                       "clip " + std::to_string(b));
    }
  }
}

TEST(VariantTrajectory, TokenOrderInsideAClipDoesNotMatter) {
  // The same clip with its tokens listed location-major instead of frame-major: the keys are sorted by
  // frame internally, so the rows come out permuted and otherwise equal.
  const Grid grid{3, 2, 2};
  const TokenLayout raster = TokenLayout::dense(1, grid);
  std::vector<int64_t> perm;
  for (int64_t s = 0; s < 4; ++s)
    for (int64_t t = 0; t < 3; ++t) perm.push_back(t * 4 + s);
  Tensor p = ops::from_vector(perm);
  const TokenLayout shuffled({12}, ops::index_select(raster.t(), 0, p), ops::index_select(raster.h(), 0, p),
                             ops::index_select(raster.w(), 0, p), ops::index_select(raster.length(), 0, p), grid);
  EXPECT_FALSE(frame_keys(shuffled).already_sorted);
  auto layer = make_layer(8, 2, grid, 1);
  Generator gen(11);
  Tensor x = ops::randn({12, 8}, DType::Float32, &gen);
  expect_all_close(as_doubles(layer->forward(index_select(x, 0, p), shuffled)),
                   as_doubles(index_select(layer->forward(x, raster), 0, p)), 1e-6, "location-major order");
}

TEST(VariantTrajectory, GradcheckEveryInputAndWeight) {
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(2, Grid{3, 1, 2}, 0.3);
  for (double original : {1.0, 0.0}) {
    auto layer = make_layer(4, 2, layout.grid(), original);
    glance::testing::parameters_to_float64(*layer);
    Generator gen(12);
    std::vector<Tensor> inputs = {ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
    for (auto& [name, param] : layer->named_parameters()) inputs.push_back(param);
    auto result =
        autograd::gradcheck([&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout); }, inputs);
    EXPECT_TRUE(result.ok) << "original_code=" << original << ": " << result.message;
    for (auto& [name, param] : layer->named_parameters()) {
      ASSERT_TRUE(param.grad().defined()) << name;
      for (double g : as_doubles(param.grad())) ASSERT_TRUE(std::isfinite(g)) << name;
    }
  }
}

TEST(VariantTrajectory, BothMotionformerDesignsTrainInsideATransformerBlock) {
  // The block builds the design by name with its options; one backward reaches every weight, finitely.
  const TokenLayout layout = glance::testing::rlt_layout_with_empty_frame(2, Grid{4, 2, 2}, 0.3);
  for (const std::string design : {"trajectory", "orthoformer"}) {
    BlockConfig c;
    c.dim = 16, c.heads = 2, c.grid = layout.grid(), c.attention = design;
    c.attention_options = {{"original_code", 0}};
    TransformerBlock block(c);
    Generator gen(20);
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    sum(block.forward(x, layout) * ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen)).backward();
    for (auto& [name, param] : block.named_parameters()) {
      ASSERT_TRUE(param.grad().defined()) << design << " " << name;
      for (double g : as_doubles(param.grad())) ASSERT_TRUE(std::isfinite(g)) << design << " " << name;
    }
  }
}

TEST(VariantTrajectory, BadInputAndOptionsAreNamed) {
  auto layer = make_layer(8, 2, Grid{2, 2, 2}, 1);
  const TokenLayout layout = TokenLayout::dense(1, Grid{2, 2, 2});
  try {
    layer->forward(ops::zeros({8, 6}), layout);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[8, 8]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[8, 6]"), std::string::npos) << e.what();
  }
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  c.options["original_code"] = 2;
  try {
    make_attention("trajectory", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("original_code"), std::string::npos) << e.what();
  }
  Tensor q = ops::zeros({2, 8, 4});
  EXPECT_THROW(trajectory_tokens(q, ops::zeros({2, 7, 4}), q, layout, frame_keys(layout), 0.5), std::invalid_argument);
}

}  // namespace
