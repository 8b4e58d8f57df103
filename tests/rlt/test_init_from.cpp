// Fine-tuning from converted weights (rlt/init_from.h, glance train --init-from): every tensor but a new head comes
// from the file, a head of another size starts afresh, and the head's learning rate can be scaled.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "nn/safetensors.h"
#include "rlt/cli_testing.h"
#include "rlt/convert.h"
#include "rlt/error_text.h"
#include "rlt/init_from.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;
using test_support::Contains;
using test_support::error_of;
using test_support::run_glance;

const std::string kFixtures = GLANCE_MODEL_FIXTURES;

struct Converted {  // the transformers VideoMAE fixture as a glance checkpoint in a temporary folder
  std::filesystem::path dir, file;
  GlanceModel model;
  Converted() {
    dir = std::filesystem::temp_directory_path() / ("glance_test_init_from_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    file = dir / "videomae.safetensors";
    const ForeignCheckpoint f = read_foreign_checkpoint(kFixtures + "/hf_videomae");
    model = to_glance(f, CheckpointLayout::HfVideoMAE);
    write_glance_model(model, file.string());
  }
  ~Converted() { std::filesystem::remove_all(dir); }
};

bool equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && ops::max(ops::unary(UnaryOp::Abs, ops::binary(BinaryOp::Sub, a, b))).item() == 0.0;
}

TEST(InitFrom, EveryTensorComesFromTheFileButANewHead) {
  Converted c;
  for (int64_t classes : {5, 8}) {  // the file's classes, then others
    ModelConfig config = c.model.config;
    config.classes = classes;
    RLTransformer model(config);
    const InitFromResult r = init_from(c.file.string(), model);
    EXPECT_EQ(r.new_head, classes != 5);
    for (const auto& [name, t] : model.state_dict()) {
      const bool head = name.rfind("head.", 0) == 0;
      if (head && classes != 5) {
        EXPECT_EQ(t.size(0), 8) << name;
        continue;
      }
      EXPECT_TRUE(equal(t, c.model.tensors.at(name))) << classes << " classes: " << name;
    }
  }
}

TEST(InitFrom, AnotherArchitectureIsNamed) {
  Converted c;
  ModelConfig config = c.model.config;
  config.depth = 3;
  RLTransformer deeper(config);
  EXPECT_TRUE(Contains(error_of([&] { init_from(c.file.string(), deeper); }), "no tensor 'blocks.2."));
  config = c.model.config;
  config.mlp_ratio = 2.0;
  RLTransformer narrower(config);
  EXPECT_TRUE(Contains(error_of([&] { init_from(c.file.string(), narrower); }), "blocks.0.mlp.fc1.bias' is float32 [192]"));
}

TEST(InitFrom, ANonFiniteWeightIsNamed) {
  Converted c;
  std::map<std::string, Tensor> tensors = c.model.tensors;
  tensors["blocks.1.mlp.fc2.bias"] = ops::full(tensors.at("blocks.1.mlp.fc2.bias").shape(), std::nan(""));
  const std::string bad = (c.dir / "nan.safetensors").string();
  nn::save_safetensors(bad, tensors);
  RLTransformer model(c.model.config);
  EXPECT_TRUE(Contains(error_of([&] { init_from(bad, model); }), "tensor 'blocks.1.mlp.fc2.bias' is not finite"));
}

TEST(InitFrom, TheHeadsLearningRateIsScaledAndNothingElse) {
  ModelConfig config = model_preset("tiny");
  RLTransformer model(config);
  const auto groups = with_head_lr_scale(nn::decay_groups(model, 1e-3, 0.05), model, 10.0);
  size_t params = 0, scaled = 0;
  for (const auto& g : groups) {
    params += g.params.size();
    for (const Tensor& p : g.params) {
      const bool head = p.impl_ptr() == model.head->weight.impl_ptr() || p.impl_ptr() == model.head->bias.impl_ptr();
      EXPECT_EQ(g.lr_scale, head ? 10.0 : 1.0);
      scaled += head;
    }
  }
  EXPECT_EQ(params, model.named_parameters().size());
  EXPECT_EQ(scaled, 2u);
}

TEST(InitFrom, CommandLine) {
  Converted c;
  const std::string common = " --steps 2 --train-clips 64 --val-clips 32 --batch-size 16 --no-progress --metrics " +
                             (c.dir / "m.jsonl").string();
  auto out = run_glance("train --init-from " + c.file.string() + common + " --head-lr-scale 10");
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_TRUE(Contains(out.text, "initialised from " + c.file.string() + " (a new head for 8 classes)"));
  EXPECT_TRUE(Contains(out.text, "\"norm_eps\":1e-12"));  // the file's model config, not the options' defaults
  out = run_glance("train --init-from " + c.file.string() + common + " --heads 4");
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "--heads 4 contradicts the checkpoint"));
  out = run_glance("train --init-from " + c.file.string() + " --load " + c.file.string() + common);
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "give one"));
}

}  // namespace
