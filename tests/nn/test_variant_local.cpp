// The "local" design (nn/attention/local_window.h): attention within blocked spatial windows across
// frames. Checked against masked float64 attention with the same weights (dense and RLT-like batches),
// against "joint" when one window covers the frame, and by gradcheck.
#include <gtest/gtest.h>

#include <cmath>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/grouped.h"
#include "nn/attention/heads.h"
#include "nn/attention/local_window.h"
#include "nn/attention/registry.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using namespace glance::testing;

TEST(VariantLocal, EqualsMaskedAttentionOverTheWindow) {
  AttentionConfig c;
  c.dim = 16, c.heads = 2, c.grid = Grid{3, 4, 5};  // W' = 5: the last column of windows is narrower
  c.options["window"] = 2;
  auto layer = std::dynamic_pointer_cast<LocalWindowAttention>(make_attention("local", c));
  ASSERT_TRUE(layer);
  for (const TokenLayout& layout : {TokenLayout::dense(2, c.grid), rlt_like_layout(3, c.grid, 0.4, 21)}) {
    Generator gen(4);
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    // Independent formulation: project, attend in float64 with an explicit window mask, merge, project.
    QKV t = project_qkv(*layer->qkv, x, 2);
    const std::vector<int64_t> clip = clip_ids(layout);
    const std::vector<int32_t> h = layout.h().to_vector<int32_t>(), w = layout.w().to_vector<int32_t>();
    auto o = masked_attention_f64(t.q, t.k, t.v, 1.0 / std::sqrt(8.0), [&](int64_t i, int64_t j) {
      return clip[i] == clip[j] && h[i] / 2 == h[j] / 2 && w[i] / 2 == w[j] / 2;
    });
    Tensor o_tensor = ops::to_dtype(ops::from_vector(o, {2, layout.total_tokens(), 8}), DType::Float32);
    Tensor expected = layer->proj->forward(merge_heads(o_tensor));
    expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(expected), 1e-5, "local vs mask");
  }
}

TEST(VariantLocal, OneWindowOverTheWholeFrameIsJointAttention) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2, c.grid = Grid{2, 3, 3};
  c.options["window"] = 3;
  manual_seed(8);
  auto local = make_attention("local", c);
  AttentionConfig joint_config = c;
  joint_config.options.clear();
  manual_seed(8);
  auto joint = make_attention("joint", joint_config);  // same qkv and proj init, same seed
  const TokenLayout layout = rlt_like_layout(2, c.grid, 0.5, 2);
  Generator gen(1);
  Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen);
  expect_all_close(as_doubles(local->forward(x, layout)), as_doubles(joint->forward(x, layout)), 1e-6, "window 3");
}

TEST(VariantLocal, Gradcheck) {
  AttentionConfig c;
  c.dim = 4, c.heads = 2, c.grid = Grid{2, 2, 3};
  // The layer's parameters are float32, so the float64 check runs on its core: grouped attention over
  // the window groups (the projections around it are Linear layers, gradchecked in test_layers).
  const TokenLayout layout = rlt_like_layout(2, c.grid, 0.5, 9);
  const int64_t N = layout.total_tokens();
  std::vector<int64_t> group(N);
  const std::vector<int32_t> h = layout.h().to_vector<int32_t>(), w = layout.w().to_vector<int32_t>();
  for (int64_t i = 0; i < N; ++i) group[i] = (h[i] / 2) * 2 + w[i] / 2;
  const Regrouping r = regroup(layout, group);
  Generator gen(3);
  std::vector<Tensor> inputs;
  for (int i = 0; i < 3; ++i) inputs.push_back(ops::randn({2, N, 2}, DType::Float64, &gen).set_requires_grad(true));
  auto result = autograd::gradcheck(
      [&](const std::vector<Tensor>& t) {
        return grouped_attention(t[0], t[1], t[2], r, attention_kernel("reference"), 0.7);
      },
      inputs);
  EXPECT_TRUE(result.ok) << result.message;
}

TEST(VariantLocal, BadWindowIsNamed) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  c.options["window"] = 0;
  try {
    make_attention("local", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("window = 0"), std::string::npos) << e.what();
  }
}

}  // namespace
