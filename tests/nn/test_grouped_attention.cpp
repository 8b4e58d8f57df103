// Grouped attention (nn/attention/grouped.h): softmax attention restricted to (clip, group), computed by
// regrouping the rows and calling an ordinary packed kernel. Checked against masked float64 attention
// on dense and RLT-like ragged batches, for every registered kernel, with gradients by gradcheck.
#include <gtest/gtest.h>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/grouped.h"
#include "nn/attention/multi_head.h"
#include "nn/attention/registry.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::clip_ids;
using glance::testing::expect_all_close;
using glance::testing::masked_attention_f64;
using glance::testing::rlt_like_layout;

void check_groups_against_mask(const TokenLayout& layout, TokenGroup by, const std::string& kernel) {
  Generator gen(7);
  const int64_t H = 2, d = 8, N = layout.total_tokens();
  Tensor q = ops::randn({H, N, d}, DType::Float32, &gen), k = ops::randn({H, N, d}, DType::Float32, &gen);
  Tensor v = ops::randn({H, N, d}, DType::Float32, &gen);
  const std::vector<int64_t> group = token_groups(layout, by), clip = clip_ids(layout);
  Tensor got = grouped_attention(q, k, v, layout, by, attention_kernel(kernel), 0.35);
  auto expected = masked_attention_f64(q, k, v, 0.35, [&](int64_t i, int64_t j) {
    return clip[i] == clip[j] && group[i] == group[j];
  });
  expect_all_close(as_doubles(got), expected, 2e-5, std::string(token_group_name(by)) + " with " + kernel);
}

TEST(GroupedAttention, EqualsMaskedAttentionOnDenseAndRaggedBatches) {
  const Grid grid{4, 3, 2};
  for (const std::string kernel : {"reference", "tiled"}) {
    for (TokenGroup by : {TokenGroup::Clip, TokenGroup::Frame, TokenGroup::Location}) {
      check_groups_against_mask(TokenLayout::dense(2, grid), by, kernel);
      check_groups_against_mask(rlt_like_layout(3, grid, 0.4, 11), by, kernel);
    }
  }
}

TEST(GroupedAttention, RegroupKeepsRasterOrderInsideEachGroup) {
  // 1 clip, grid 2 x 1 x 2: tokens (t,w) = (0,0) (0,1) (1,0) (1,1). By location: {0, 2} then {1, 3}.
  Regrouping r = regroup(TokenLayout::dense(1, Grid{2, 1, 2}), token_groups(TokenLayout::dense(1, Grid{2, 1, 2}),
                                                                           TokenGroup::Location));
  EXPECT_EQ(r.order.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(r.inverse.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(r.groups.batch_size(), 2);
  EXPECT_EQ(r.groups.t().to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 0, 1}));
  EXPECT_EQ(r.group_of_row, (std::vector<int64_t>{0, 1}));
}

TEST(GroupedAttention, GradcheckThroughTheRegrouping) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 3);
  const int64_t N = layout.total_tokens();
  Generator gen(5);
  std::vector<Tensor> inputs;
  for (int i = 0; i < 3; ++i) inputs.push_back(ops::randn({2, N, 3}, DType::Float64, &gen).set_requires_grad(true));
  auto result = autograd::gradcheck(
      [&](const std::vector<Tensor>& x) {
        return grouped_attention(x[0], x[1], x[2], layout, TokenGroup::Location, attention_kernel("reference"), 0.5);
      },
      inputs);
  EXPECT_TRUE(result.ok) << result.message;
}

TEST(GroupedAttention, SpaceOnlyOnOneFrameEqualsJoint) {
  // With T' = 1 every token of a clip is in the same frame: space_only == joint (same weights).
  AttentionConfig c;
  c.dim = 16, c.heads = 2, c.grid = Grid{1, 3, 3};
  manual_seed(1);
  auto joint = make_attention("joint", c);
  manual_seed(1);
  auto space = make_attention("space_only", c);
  const TokenLayout layout = TokenLayout::dense(2, c.grid);
  Generator gen(9);
  Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  expect_all_close(as_doubles(space->forward(x, layout)), as_doubles(joint->forward(x, layout)), 1e-6, "T'=1");
}

TEST(AttentionRegistry, UnknownNamesAndOptionsAreNamed) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  try {
    make_attention("no_such_design", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_design"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("joint"), std::string::npos);
  }
  c.options["landmarks"] = 4;  // joint has no knobs
  try {
    make_attention("joint", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("landmarks"), std::string::npos) << e.what();
  }
}

}  // namespace
