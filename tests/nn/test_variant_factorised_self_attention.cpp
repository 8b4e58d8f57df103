// ViViT's factorised self-attention, Model 3 (nn/attention/factorised_self_attention.h). The update is
// compared with a hand composition of masked float64 attentions in both orders, with every weight random,
// on dense and RLT-like batches; with TimeSformer's divided attention whose temporal_fc is the identity;
// then packing, options, kernels, gradients and errors.
#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "nn/attention/divided.h"
#include "nn/attention/factorised_self_attention.h"
#include "nn/attention/registry.h"
#include "space_time_testing.h"

namespace {

using namespace glance;
using namespace glance::nn;
using namespace glance::testing;
using Order = FactorisedSelfAttention::Order;

std::shared_ptr<FactorisedSelfAttention> make_factorised(int64_t dim, int64_t heads, uint64_t seed,
                                                         std::map<std::string, double> options = {},
                                                         const std::string& kernel = "reference") {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.kernel = kernel, c.options = std::move(options);
  auto layer = std::dynamic_pointer_cast<FactorisedSelfAttention>(make_attention("factorised_self_attention", c));
  randomise_parameters(*layer, seed);
  return layer;
}

std::shared_ptr<LayerNorm> make_norm1(int64_t dim, uint64_t seed) {  // LN_s: the block's norm1
  auto norm = std::make_shared<LayerNorm>(dim, 1e-6);
  randomise_parameters(*norm, seed);
  return norm;
}

// scenic's EncoderFactorizedSelfAttentionBlock, written with masks: each step x = x + MSA(LN x), MSA_t
// masked to "same clip, same (h, w)", MSA_s to "same clip, same t"; the update is x2 - x.
Tensor expected_update(const FactorisedSelfAttention& a, const LayerNorm& norm1, const Tensor& x,
                       const TokenLayout& layout, Order order) {
  const Coords c(layout);
  auto temporal = [&](const Tensor& y) {
    return masked_mha_f64(*a.temporal_attn->qkv, *a.temporal_attn->proj, a.temporal_norm->forward(y), a.heads,
                          [&](int64_t, int64_t i, int64_t j) { return c.same_location(i, j); });
  };
  auto spatial = [&](const Tensor& y) {
    return masked_mha_f64(*a.qkv, *a.proj, norm1.forward(y), a.heads,
                          [&](int64_t, int64_t i, int64_t j) { return c.same_frame(i, j); });
  };
  Tensor x1 = order == Order::TimeSpace ? x + temporal(x) : x + spatial(x);
  Tensor x2 = order == Order::TimeSpace ? x1 + spatial(x1) : x1 + temporal(x1);
  return x2 - x;
}

void check_update_against_masks(const TokenLayout& layout, double order, const std::string& kernel,
                                const std::string& what) {
  auto layer = make_factorised(16, 2, 3, {{"order", order}}, kernel);
  auto norm1 = make_norm1(16, 4);
  to_float64(*layer), to_float64(*norm1);
  ASSERT_EQ(layer->order, order == 0 ? Order::TimeSpace : Order::SpaceTime);
  Generator gen(5);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float64, &gen);
  expect_all_close(as_doubles(layer->update(x, layout, *norm1)),
                   as_doubles(expected_update(*layer, *norm1, x, layout, layer->order)), 1e-10,
                   what + " order " + std::to_string(int(order)) + " with " + kernel);
}

TEST(VariantFactorisedSelfAttention, UpdateEqualsMaskedStepsOnADenseBatchInBothOrders) {
  for (const std::string kernel : {"reference", "tiled"}) {
    for (double order : {0.0, 1.0}) check_update_against_masks(TokenLayout::dense(2, Grid{3, 2, 3}), order, kernel, "dense");
  }
}

TEST(VariantFactorisedSelfAttention, UpdateEqualsMaskedStepsOnAnRltBatchInBothOrders) {
  for (const std::string kernel : {"reference", "tiled"}) {
    for (double order : {0.0, 1.0}) {
      check_update_against_masks(rlt_like_layout(3, Grid{4, 3, 2}, 0.4, 11), order, kernel, "RLT");
    }
  }
}

TEST(VariantFactorisedSelfAttention, TheOrderMatters) {
  // Same weights, two orders: different results (so the order option is not ignored).
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 6);
  auto time_space = make_factorised(8, 2, 7, {{"order", 0}});
  auto space_time = make_factorised(8, 2, 7, {{"order", 1}});
  auto norm1 = make_norm1(8, 8);
  const Tensor x = ops::randn({layout.total_tokens(), 8});
  EXPECT_GT(max_abs_difference(time_space->update(x, layout, *norm1), space_time->update(x, layout, *norm1)), 1e-3);
}

TEST(VariantFactorisedSelfAttention, EqualsDividedAttentionWithAnIdentityTemporalFc) {
  // Model 3 in time_space order is TimeSformer's block without temporal_fc: copy the weights into a
  // "divided" layer and set its temporal_fc to the identity.
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 2, 3}, 0.4, 9);
  auto factorised = make_factorised(16, 4, 10);
  AttentionConfig c;
  c.dim = 16, c.heads = 4;
  auto divided = std::dynamic_pointer_cast<DividedSpaceTimeAttention>(make_attention("divided", c));
  auto copy = [](const Tensor& to, const Tensor& from) { ops::copy_(to, from); };
  copy(divided->qkv->weight, factorised->qkv->weight), copy(divided->qkv->bias, factorised->qkv->bias);
  copy(divided->proj->weight, factorised->proj->weight), copy(divided->proj->bias, factorised->proj->bias);
  copy(divided->temporal_norm1->weight, factorised->temporal_norm->weight);
  copy(divided->temporal_norm1->bias, factorised->temporal_norm->bias);
  const MultiHeadSelfAttention &to = *divided->temporal_attn, &from = *factorised->temporal_attn;
  copy(to.qkv->weight, from.qkv->weight), copy(to.qkv->bias, from.qkv->bias);
  copy(to.proj->weight, from.proj->weight), copy(to.proj->bias, from.proj->bias);
  copy(divided->temporal_fc->weight, ops::eye(16)), copy(divided->temporal_fc->bias, ops::zeros({16}));
  auto norm1 = make_norm1(16, 12);
  Generator gen(13);
  const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
  expect_all_close(as_doubles(factorised->update(x, layout, *norm1)), as_doubles(divided->update(x, layout, *norm1)),
                   1e-5, "factorised vs divided");
}

TEST(VariantFactorisedSelfAttention, InitFollowsTheCodeUnlessZeroInitTemporalIsAsked) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 3, 2}, 0.5, 14);
  auto norm1 = make_norm1(8, 15);
  const Tensor x = ops::randn({layout.total_tokens(), 8});
  // The code's init: reset_special_parameters changes nothing.
  auto code = make_factorised(8, 2, 16);
  std::map<std::string, Tensor> before;
  for (const auto& [name, p] : code->named_parameters()) before[name] = ops::clone(p);
  code->reset_special_parameters();
  for (const auto& [name, p] : code->named_parameters()) EXPECT_EQ(max_abs_difference(p, before[name]), 0.0) << name;
  // The paper's init: MSA_t's output projection is zero, so the temporal step is the identity and the
  // update is the spatial step alone.
  auto paper = make_factorised(8, 2, 16, {{"zero_init_temporal", 1}});
  EXPECT_GT(max_abs_difference(paper->update(x, layout, *norm1), paper->spatial_step(x, layout, *norm1)), 1e-3);
  paper->reset_special_parameters();
  EXPECT_EQ(max_abs_difference(paper->temporal_step(x, layout), ops::zeros({layout.total_tokens(), 8})), 0.0);
  expect_all_close(as_doubles(paper->update(x, layout, *norm1)), as_doubles(paper->spatial_step(x, layout, *norm1)),
                   1e-6, "zero_init_temporal");
}

TEST(VariantFactorisedSelfAttention, PackedBatchEqualsEachClipAlone) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 2}, 0.3, 17);
  for (double order : {0.0, 1.0}) {
    auto layer = make_factorised(16, 2, 18, {{"order", order}});
    auto norm1 = make_norm1(16, 19);
    Generator gen(20);
    const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const Tensor packed = layer->update(x, layout, *norm1);
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const Tensor alone = layer->update(ops::contiguous(clip_rows(x, layout, b)), one_clip(layout, b), *norm1);
      expect_all_close(as_doubles(clip_rows(packed, layout, b)), as_doubles(alone), 1e-5, "clip " + std::to_string(b));
    }
  }
}

TEST(VariantFactorisedSelfAttention, SetKernelReachesBothSteps) {
  CountingAttentionCpu counting;
  ScopedCpuBackend installed(&counting);
  auto layer = make_factorised(8, 2, 21);
  auto norm1 = make_norm1(8, 22);
  layer->set_kernel("reference");  // the plain kernel: no step calls the backend's attention
  layer->update(ops::randn({8, 8}), TokenLayout::dense(1, Grid{2, 2, 2}), *norm1);
  EXPECT_EQ(counting.calls, 0);
  layer->set_kernel("tiled");  // the CPU backend's attention
  layer->update(ops::randn({8, 8}), TokenLayout::dense(1, Grid{2, 2, 2}), *norm1);
  EXPECT_EQ(counting.calls, 2);
}

TEST(VariantFactorisedSelfAttention, GradcheckEveryParameterAndTheInputInBothOrders) {
  const TokenLayout layout = rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 23);
  for (double order : {0.0, 1.0}) {
    auto layer = make_factorised(4, 2, 24, {{"order", order}});
    auto norm1 = make_norm1(4, 25);
    to_float64(*layer), to_float64(*norm1);
    Generator gen(26);
    std::vector<Tensor> inputs{ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
    for (const auto& [name, p] : layer->named_parameters()) inputs.push_back(p);  // perturbed in place
    for (const auto& [name, p] : norm1->named_parameters()) inputs.push_back(p);
    const auto result = autograd::gradcheck(
        [&](const std::vector<Tensor>& in) { return layer->update(in[0], layout, *norm1); }, inputs);
    EXPECT_TRUE(result.ok) << "order " << order << ": " << result.message;
    EXPECT_TRUE(every_parameter_has_a_finite_gradient(*layer));
    EXPECT_TRUE(every_parameter_has_a_finite_gradient(*norm1));
  }
}

TEST(VariantFactorisedSelfAttention, RejectsBadOptionsAndInputs) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  c.options = {{"order", 2}};
  try {
    make_attention("factorised_self_attention", c);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("order"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("got 2"), std::string::npos) << e.what();
  }
  c.options = {{"zero_init_temporal", 0.5}};
  EXPECT_THROW(make_attention("factorised_self_attention", c), std::invalid_argument);
  c.options = {{"temporal_fc", 1}};  // a knob of another design
  EXPECT_THROW(make_attention("factorised_self_attention", c), std::invalid_argument);

  auto layer = make_factorised(8, 2, 27);
  LayerNorm norm1(8);
  try {
    layer->update(ops::zeros({8, 6}), TokenLayout::dense(1, Grid{2, 2, 2}), norm1);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("factorised_self_attention"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[8, 6]"), std::string::npos) << e.what();
  }
}

}  // namespace
