// TimeSformer's divided space-time attention (nn/attention/divided.h). The whole update is compared with
// a hand composition of masked float64 attentions ("same clip and same (h, w)", then "same clip and same
// t") using the layer's own projections, with every weight random (temporal_fc included), on dense and
// RLT-like batches; then the special init (zero temporal_fc = space_only), packing, T' = 1, kernels,
// gradients and errors.
#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "nn/attention/divided.h"
#include "nn/attention/registry.h"
#include "space_time_testing.h"

namespace {

using namespace glance;
using namespace glance::nn;
using namespace glance::testing;

std::shared_ptr<DividedSpaceTimeAttention> make_divided(int64_t dim, int64_t heads, uint64_t seed,
                                                        const std::string& kernel = "reference") {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.kernel = kernel;
  auto layer = std::dynamic_pointer_cast<DividedSpaceTimeAttention>(make_attention("divided", c));
  randomise_parameters(*layer, seed);
  return layer;
}

std::shared_ptr<LayerNorm> make_norm1(int64_t dim, uint64_t seed) {  // stands for the block's norm1
  auto norm = std::make_shared<LayerNorm>(dim, 1e-6);
  randomise_parameters(*norm, seed);
  return norm;
}

// TimeSformer's Block, written with masks: temporal = temporal_fc(TAttn(temporal_norm1 x)) with TAttn
// masked to "same clip, same (h, w)"; spatial = SAttn(norm1(x + temporal)) masked to "same clip, same t".
Tensor expected_update(const DividedSpaceTimeAttention& a, const LayerNorm& norm1, const Tensor& x,
                       const TokenLayout& layout) {
  const Coords c(layout);
  const Tensor temporal = a.temporal_fc->forward(
      masked_mha_f64(*a.temporal_attn->qkv, *a.temporal_attn->proj, a.temporal_norm1->forward(x), a.heads,
                     [&](int64_t, int64_t i, int64_t j) { return c.same_location(i, j); }));
  const Tensor spatial = masked_mha_f64(*a.qkv, *a.proj, norm1.forward(x + temporal), a.heads,
                                        [&](int64_t, int64_t i, int64_t j) { return c.same_frame(i, j); });
  return temporal + spatial;
}

void check_update_against_masks(const TokenLayout& layout, const std::string& kernel, const std::string& what) {
  auto layer = make_divided(16, 2, 3, kernel);
  auto norm1 = make_norm1(16, 4);
  to_float64(*layer), to_float64(*norm1);
  Generator gen(5);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float64, &gen);
  expect_all_close(as_doubles(layer->update(x, layout, *norm1)), as_doubles(expected_update(*layer, *norm1, x, layout)),
                   1e-10, what + " with " + kernel);
}

TEST(VariantDivided, UpdateEqualsMaskedTemporalThenSpatialAttentionOnADenseBatch) {
  for (const std::string kernel : {"reference", "tiled"}) {
    check_update_against_masks(TokenLayout::dense(2, Grid{3, 2, 3}), kernel, "dense");
  }
}

TEST(VariantDivided, UpdateEqualsMaskedTemporalThenSpatialAttentionOnAnRltBatch) {
  for (const std::string kernel : {"reference", "tiled"}) {
    check_update_against_masks(rlt_like_layout(3, Grid{4, 3, 2}, 0.4, 11), kernel, "RLT");
  }
}

TEST(VariantDivided, EachStepEqualsItsMask) {
  // The temporal step alone: "same clip and same (h, w)" (one token per run on RLT); the spatial step
  // alone (forward on normalised tokens): "same clip and same t".
  const TokenLayout layout = rlt_like_layout(2, Grid{4, 2, 3}, 0.5, 21);
  auto layer = make_divided(16, 4, 6);
  to_float64(*layer);
  Generator gen(7);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float64, &gen);
  const Coords c(layout);
  const Tensor temporal = layer->temporal_fc->forward(
      masked_mha_f64(*layer->temporal_attn->qkv, *layer->temporal_attn->proj, layer->temporal_norm1->forward(x), 4,
                     [&](int64_t, int64_t i, int64_t j) { return c.same_location(i, j); }));
  expect_all_close(as_doubles(layer->temporal_step(x, layout)), as_doubles(temporal), 1e-10, "temporal step");
  const Tensor spatial =
      masked_mha_f64(*layer->qkv, *layer->proj, x, 4, [&](int64_t, int64_t i, int64_t j) { return c.same_frame(i, j); });
  expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(spatial), 1e-10, "spatial step");
}

TEST(VariantDivided, ZeroTemporalFcMakesItSpaceOnlyWithTheSameWeights) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 3}, 0.4, 8);
  auto layer = make_divided(16, 2, 9);
  auto norm1 = make_norm1(16, 10);
  AttentionConfig c;
  c.dim = 16, c.heads = 2;
  auto space_only = make_attention("space_only", c);
  space_only->load_state_dict(layer->state_dict(), /*strict=*/false);  // qkv.*, proj.*: the same names
  Generator gen(11);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  const Tensor space = space_only->forward(norm1->forward(x), layout);
  // With the random temporal_fc the temporal branch matters...
  EXPECT_GT(max_abs_difference(layer->update(x, layout, *norm1), space), 1e-2);
  // ...and TimeSformer's init (zero temporal_fc) makes the block a space-only block.
  layer->reset_special_parameters();
  EXPECT_EQ(max_abs_difference(layer->temporal_fc->weight, ops::zeros({16, 16})), 0.0);
  EXPECT_EQ(max_abs_difference(layer->temporal_fc->bias, ops::zeros({16})), 0.0);
  expect_all_close(as_doubles(layer->update(x, layout, *norm1)), as_doubles(space), 1e-6, "zero temporal_fc");
}

TEST(VariantDivided, OneFrameMakesTheTemporalStepALinearMap) {
  // With T' = 1 each location holds one token, so TAttn returns each token's own value vector: the
  // temporal step is temporal_fc(proj_t(v)) with v = temporal_norm1(x) W_v^T + b_v, W_v and b_v the last
  // third of temporal_attn.qkv. No softmax in the expectation, and it pins down which third of qkv is v
  // (the masked references above share project_qkv with the layer, so they would not see a wrong split).
  const TokenLayout layout = TokenLayout::dense(2, Grid{1, 3, 3});
  auto layer = make_divided(12, 3, 12);
  Generator gen(13);
  const Tensor x = ops::randn({layout.total_tokens(), 12}, DType::Float32, &gen);
  const Linear& qkv_t = *layer->temporal_attn->qkv;
  const Tensor v = linear(layer->temporal_norm1->forward(x), ops::narrow(qkv_t.weight, 0, 24, 12),
                          ops::narrow(qkv_t.bias, 0, 24, 12));
  const Tensor expected = layer->temporal_fc->forward(layer->temporal_attn->proj->forward(v));
  expect_all_close(as_doubles(layer->temporal_step(x, layout)), as_doubles(expected), 1e-6, "T' = 1");
}

TEST(VariantDivided, PackedBatchEqualsEachClipAlone) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 2}, 0.3, 14);
  auto layer = make_divided(16, 2, 15);
  auto norm1 = make_norm1(16, 16);
  Generator gen(17);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  const Tensor packed = layer->update(x, layout, *norm1);
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const Tensor alone = layer->update(ops::contiguous(clip_rows(x, layout, b)), one_clip(layout, b), *norm1);
    expect_all_close(as_doubles(clip_rows(packed, layout, b)), as_doubles(alone), 1e-5, "clip " + std::to_string(b));
  }
}

TEST(VariantDivided, SetKernelReachesBothSteps) {
  CountingAttentionCpu counting;
  ScopedCpuBackend installed(&counting);
  const TokenLayout layout = TokenLayout::dense(1, Grid{2, 2, 2});
  auto layer = make_divided(8, 2, 18);
  auto norm1 = make_norm1(8, 19);
  layer->set_kernel("reference");  // the plain kernel: no step calls the backend's attention
  layer->update(ops::randn({8, 8}), layout, *norm1);
  EXPECT_EQ(counting.calls, 0);
  layer->set_kernel("tiled");  // the CPU backend's attention
  layer->update(ops::randn({8, 8}), layout, *norm1);
  EXPECT_EQ(counting.calls, 2);  // the temporal and the spatial attention
}

TEST(VariantDivided, NamesItsParametersAsTimeSformer) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  std::vector<std::string> names;
  for (const auto& [name, p] : make_attention("divided", c)->named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"qkv.weight", "qkv.bias", "proj.weight", "proj.bias",
                                             "temporal_norm1.weight", "temporal_norm1.bias",
                                             "temporal_attn.qkv.weight", "temporal_attn.qkv.bias",
                                             "temporal_attn.proj.weight", "temporal_attn.proj.bias",
                                             "temporal_fc.weight", "temporal_fc.bias"}));
}

TEST(VariantDivided, GradcheckEveryParameterAndTheInput) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 20);
  auto layer = make_divided(4, 2, 21);
  auto norm1 = make_norm1(4, 22);
  to_float64(*layer), to_float64(*norm1);
  Generator gen(23);
  std::vector<Tensor> inputs{ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
  for (const auto& [name, p] : layer->named_parameters()) inputs.push_back(p);  // perturbed in place by gradcheck
  for (const auto& [name, p] : norm1->named_parameters()) inputs.push_back(p);
  const auto result = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return layer->update(in[0], layout, *norm1); }, inputs);
  EXPECT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(every_parameter_has_a_finite_gradient(*layer));
  EXPECT_TRUE(every_parameter_has_a_finite_gradient(*norm1));
}

TEST(VariantDivided, RejectsAnInputOfTheWrongShape) {
  const TokenLayout layout = TokenLayout::dense(1, Grid{2, 2, 2});
  auto layer = make_divided(8, 2, 24);
  LayerNorm norm1(8);
  try {
    layer->update(ops::zeros({8, 6}), layout, norm1);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("divided"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[8, 6]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(layer->update(ops::zeros({7, 8}), layout, norm1), std::invalid_argument);  // 7 rows, 8 tokens
}

}  // namespace
