// Every registered attention design inside the whole RLT model (rlt/model.h), on a dense batch and on an
// RLT-like ragged batch: a pack of clips gives each clip the logits it gets alone (no design leaks across
// clips), the logits are finite, and every parameter receives a finite gradient. Designs registered
// later are covered automatically.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "nn/attention/registry.h"
#include "nn/attention_testing.h"
#include "rlt/model.h"
#include "tensor/random.h"

namespace {

using namespace glance;

rlt::ModelConfig small_config(const std::string& attention) {
  rlt::ModelConfig c;
  c.frames = 8, c.image_size = 16, c.tubelet = 2, c.patch = 8;  // grid 4 x 2 x 2: 16 tokens per clip
  c.dim = 16, c.heads = 2, c.depth = 2, c.classes = 3;
  c.attention = attention;
  return c;
}

nn::TokenLayout one_clip(const nn::TokenLayout& layout, int64_t b) {
  const int64_t start = layout.clip_begin(b), n = layout.clip_tokens(b);
  return nn::TokenLayout({n}, ops::narrow(layout.t(), 0, start, n), ops::narrow(layout.h(), 0, start, n),
                         ops::narrow(layout.w(), 0, start, n), ops::narrow(layout.length(), 0, start, n),
                         layout.grid());
}

void check_design(const std::string& name, const nn::TokenLayout& layout, const std::string& what) {
  manual_seed(3);
  rlt::RLTransformer model(small_config(name));
  model.eval();
  Generator gen(17);
  Tensor tubelets = ops::randn({layout.total_tokens(), model.patch_embed->input_size()}, DType::Float32, &gen);
  Tensor logits = model.forward(tubelets, layout);
  ASSERT_EQ(logits.shape(), (Shape{layout.batch_size(), 3})) << name;
  const std::vector<double> packed = glance::testing::as_doubles(logits);
  for (double v : packed) ASSERT_TRUE(std::isfinite(v)) << name << " " << what;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const nn::TokenLayout alone = one_clip(layout, b);
    Tensor own = model.forward(ops::narrow(tubelets, 0, layout.clip_begin(b), layout.clip_tokens(b)), alone);
    const std::vector<double> row(packed.begin() + b * 3, packed.begin() + b * 3 + 3);
    glance::testing::expect_all_close(glance::testing::as_doubles(own), row, 2e-5,
                                      name + " " + what + ": clip " + std::to_string(b) + " alone vs in the pack");
  }
  model.train();
  Tensor loss = sum(model.forward(tubelets, layout) * ops::randn({layout.batch_size(), 3}, DType::Float32, &gen));
  loss.backward();
  for (const auto& [pname, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name << " " << what << ": no gradient for " << pname;
    for (double g : glance::testing::as_doubles(p.grad())) {
      ASSERT_TRUE(std::isfinite(g)) << name << " " << what << ": non-finite gradient in " << pname;
    }
  }
}

TEST(VariantsInModel, EveryDesignKeepsClipsApartAndTrainsOnDenseAndRltBatches) {
  const nn::Grid grid{4, 2, 2};
  for (const nn::AttentionVariant& v : nn::attention_variants()) {
    SCOPED_TRACE(v.name);
    check_design(v.name, nn::TokenLayout::dense(2, grid), "dense");
    check_design(v.name, glance::testing::rlt_like_layout(3, grid, 0.4, 5), "rlt");
  }
}

// The weights of the transformer blocks (and ViViT's temporal encoder) and the head: what
// ModelConfig::minimum_parameters bounds from below (the embeddings come on top).
double block_and_head_parameters(const rlt::RLTransformer& model) {
  double n = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    for (const char* prefix : {"blocks.", "temporal.", "head."}) {
      if (name.rfind(prefix, 0) == 0) n += double(p.numel());
    }
  }
  return n;
}

TEST(VariantsInModel, EveryDesignHasAtLeastTheMinimumParametersOfItsSizes) {
  // ModelConfig::minimum_parameters is the bound a checkpoint's tensors are checked against before its model is
  // built: a design with fewer weights would have its good checkpoints refused.
  for (const nn::AttentionVariant& v : nn::attention_variants()) {
    for (double mlp_ratio : {4.0, 2.7}) {  // 2.7 x 16 = 43.2: the MLP's hidden size is truncated to 43
      rlt::ModelConfig c = small_config(v.name);
      c.mlp_ratio = mlp_ratio;
      const rlt::RLTransformer model(c);
      EXPECT_GE(block_and_head_parameters(model), c.minimum_parameters()) << v.name << ", mlp_ratio " << mlp_ratio;
    }
  }
  for (const std::string& preset : rlt::model_preset_names()) {
    rlt::ModelConfig c = rlt::model_preset(preset);
    if (c.minimum_parameters() > 2e7) continue;  // ViT-B: 86 M weights, too many to build in a unit test
    EXPECT_GE(block_and_head_parameters(rlt::RLTransformer(c)), c.minimum_parameters()) << preset;
  }
}

TEST(VariantsInModel, ConfigRoundTripsTheDesignAndItsOptions) {
  rlt::ModelConfig c = small_config("factorised_encoder");
  c.attention_options["temporal_depth"] = 2;
  c.embed_init = "central";
  const rlt::ModelConfig back = rlt::ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.attention, "factorised_encoder");
  EXPECT_EQ(back.attention_options.at("temporal_depth"), 2);
  EXPECT_EQ(back.embed_init, "central");
  rlt::RLTransformer model(back);
  ASSERT_TRUE(model.temporal);
  EXPECT_EQ(model.temporal->blocks.size(), 2u);
}

TEST(VariantsInModel, FactorisedEncoderPoolsOneTokenPerNonEmptyFrame) {
  // Clip 0: frames 0 and 2 non-empty (tokens at t = 0, 0, 2); clip 1: frame 0 only.
  nn::TokenLayout layout({3, 1}, ops::from_vector(std::vector<int32_t>{0, 0, 2, 0}),
                         ops::from_vector(std::vector<int32_t>{0, 1, 0, 0}), ops::from_vector(std::vector<int32_t>{0, 0, 1, 0}),
                         ops::from_vector(std::vector<int32_t>{2, 4, 2, 4}), nn::Grid{4, 2, 2});
  nn::FramePooling p = nn::pool_frames(layout);
  EXPECT_EQ(p.frames.offsets(), (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(p.frame_t.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 0}));
  EXPECT_EQ(p.average.to_vector<float>(), (std::vector<float>{0.5f, 0.5f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
}

TEST(VariantsInModel, CentralFrameTubeletEqualsPatchEmbeddingOfTheCentralFrame) {
  // ViViT: with E3[:, :, u/2] = E2D and zeros elsewhere, a tubelet embeds as the 2-D patch of frame u/2.
  rlt::TubeletEmbedding embed(3, 2, 4, 5);
  Generator gen(2);
  Tensor e2d = ops::randn({5, 3, 4, 4}, DType::Float32, &gen);
  embed.init_central_frame(e2d);
  Tensor tubelet = ops::randn({1, 3, 2, 4, 4}, DType::Float32, &gen);  // [1, C, u, p, p]
  Tensor got = embed.forward(ops::reshape(tubelet, {1, -1}));
  // The 2-D patch embedding of frame 1 (the second frame, as scenic's code), by hand.
  std::vector<float> w = e2d.to_vector<float>(), x = ops::contiguous(ops::select(tubelet, 2, 1)).to_vector<float>();
  std::vector<float> b = embed.bias.to_vector<float>(), out = got.to_vector<float>();
  for (int64_t d = 0; d < 5; ++d) {
    double acc = b[d];
    for (int64_t i = 0; i < 48; ++i) acc += double(w[d * 48 + i]) * double(x[i]);
    EXPECT_NEAR(out[d], acc, 1e-5) << "output " << d;
  }
  EXPECT_THROW(embed.init_central_frame(ops::zeros({5, 3, 2, 2})), std::invalid_argument);
}

}  // namespace
