// ViViT's factorised dot-product attention, Model 4 (nn/attention/factorised_dot_product.h). Compared
// with masked multi-head attention in float64 whose masks differ per head (the first half "same clip and
// same (h, w)", the second half "same clip and same t"), all projections shared, with random weights, on
// dense and RLT-like batches; then its parameters (those of "joint"), packing, kernels, gradients and
// errors.
#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "nn/attention/factorised_dot_product.h"
#include "nn/attention/registry.h"
#include "space_time_testing.h"

namespace {

using namespace glance;
using namespace glance::nn;
using namespace glance::testing;

std::shared_ptr<FactorisedDotProductAttention> make_factorised(int64_t dim, int64_t heads, uint64_t seed,
                                                               const std::string& kernel = "reference") {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.kernel = kernel;
  auto layer = std::dynamic_pointer_cast<FactorisedDotProductAttention>(make_attention("factorised_dot_product", c));
  randomise_parameters(*layer, seed);
  return layer;
}

void check_against_per_head_masks(const TokenLayout& layout, int64_t heads, const std::string& kernel,
                                  const std::string& what) {
  auto layer = make_factorised(24, heads, 3, kernel);
  to_float64(*layer);
  Generator gen(4);
  const Tensor x = ops::randn({layout.total_tokens(), 24}, DType::Float64, &gen);
  const Coords c(layout);
  const Tensor expected = masked_mha_f64(*layer->qkv, *layer->proj, x, heads, [&](int64_t head, int64_t i, int64_t j) {
    return head < heads / 2 ? c.same_location(i, j) : c.same_frame(i, j);
  });
  expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(expected), 1e-10,
                   what + ", " + std::to_string(heads) + " heads, " + kernel);
}

TEST(VariantFactorisedDotProduct, EqualsPerHeadMaskedAttentionOnADenseBatch) {
  for (const std::string kernel : {"reference", "tiled"}) {
    for (int64_t heads : {2, 4, 6}) check_against_per_head_masks(TokenLayout::dense(2, Grid{3, 2, 3}), heads, kernel, "dense");
  }
}

TEST(VariantFactorisedDotProduct, EqualsPerHeadMaskedAttentionOnAnRltBatch) {
  for (const std::string kernel : {"reference", "tiled"}) {
    for (int64_t heads : {2, 4}) {
      check_against_per_head_masks(rlt_like_layout(3, Grid{4, 3, 2}, 0.4, 11), heads, kernel, "RLT");
    }
  }
}

TEST(VariantFactorisedDotProduct, HasTheParametersOfJoint) {
  // The same qkv and proj as "joint" (Model 1): a joint checkpoint loads strictly, and only the masks differ.
  AttentionConfig c;
  c.dim = 16, c.heads = 4;
  auto joint = make_attention("joint", c);
  auto factorised = make_attention("factorised_dot_product", c);
  EXPECT_EQ(factorised->parameter_count(), joint->parameter_count());
  randomise_parameters(*joint, 5);
  factorised->load_state_dict(joint->state_dict(), /*strict=*/true);
  // On a one-frame, one-location clip every mask is the whole clip, so the two agree...
  const TokenLayout single = TokenLayout::dense(3, Grid{1, 1, 1});
  const Tensor x1 = ops::randn({3, 16});
  expect_all_close(as_doubles(factorised->forward(x1, single)), as_doubles(joint->forward(x1, single)), 1e-6,
                   "one token per clip");
  // ...and on a real grid they do not.
  const TokenLayout layout = TokenLayout::dense(2, Grid{3, 2, 2});
  const Tensor x = ops::randn({layout.total_tokens(), 16});
  EXPECT_GT(max_abs_difference(factorised->forward(x, layout), joint->forward(x, layout)), 1e-3);
}

TEST(VariantFactorisedDotProduct, PackedBatchEqualsEachClipAlone) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 2}, 0.3, 6);
  auto layer = make_factorised(16, 4, 7);
  Generator gen(8);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  const Tensor packed = layer->forward(x, layout);
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const Tensor alone = layer->forward(ops::contiguous(clip_rows(x, layout, b)), one_clip(layout, b));
    expect_all_close(as_doubles(clip_rows(packed, layout, b)), as_doubles(alone), 1e-5, "clip " + std::to_string(b));
  }
}

TEST(VariantFactorisedDotProduct, SetKernelServesBothHalves) {
  CountingAttentionCpu counting;
  ScopedCpuBackend installed(&counting);
  auto layer = make_factorised(8, 2, 9);
  layer->set_kernel("reference");  // the plain kernel: no step calls the backend's attention
  layer->forward(ops::randn({8, 8}), TokenLayout::dense(1, Grid{2, 2, 2}));
  EXPECT_EQ(counting.calls, 0);
  layer->set_kernel("tiled");  // the CPU backend's attention
  layer->forward(ops::randn({8, 8}), TokenLayout::dense(1, Grid{2, 2, 2}));
  EXPECT_EQ(counting.calls, 2);  // the time heads and the space heads
}

TEST(VariantFactorisedDotProduct, GradcheckEveryParameterAndTheInput) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 10);
  auto layer = make_factorised(4, 2, 11);
  to_float64(*layer);
  Generator gen(12);
  std::vector<Tensor> inputs{ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
  for (const auto& [name, p] : layer->named_parameters()) inputs.push_back(p);  // perturbed in place by gradcheck
  const auto result = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout); }, inputs);
  EXPECT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(every_parameter_has_a_finite_gradient(*layer));
}

TEST(VariantFactorisedDotProduct, RejectsAnOddHeadCountAndBadInput) {
  AttentionConfig c;
  c.dim = 12, c.heads = 3;
  try {
    make_attention("factorised_dot_product", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("even"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3 heads"), std::string::npos) << e.what();
  }
  c.dim = 10, c.heads = 4;  // even, but 10 is not divisible by 4
  EXPECT_THROW(make_attention("factorised_dot_product", c), std::invalid_argument);
  auto layer = make_factorised(8, 2, 13);
  try {
    layer->forward(ops::zeros({8, 6}), TokenLayout::dense(1, Grid{2, 2, 2}));
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("factorised_dot_product"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[8, 6]"), std::string::npos) << e.what();
  }
}

}  // namespace
