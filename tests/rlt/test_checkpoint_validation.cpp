// A checkpoint is validated completely before anything uses it: `glance predict`, `eval` and `train --load`
// refuse a damaged or hand-edited file with a message that names the file and the field, never crash, never
// read past a buffer and never train from a state that makes no sense. Each case below starts from a good
// checkpoint (a tiny model and its AdamW state, written as glance train writes them) and changes one thing.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nn/json.h"
#include "nn/optim/adamw.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/cli_testing.h"
#include "rlt/image.h"
#include "rlt/synthetic_video.h"
#include "rlt/trainer.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;
using test_support::fresh_dir;
using test_support::Output;
using test_support::run_glance;

// The "tiny" preset with one block: what `glance train --depth 1` builds for the built-in data's 8 classes.
ModelConfig small_model() {
  ModelConfig m = model_preset("tiny");
  m.depth = 1;
  return m;
}

class CheckpointValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    const ModelConfig m = small_model();
    TokenizerConfig tok;
    tok.tubelet = m.tubelet, tok.patch = m.patch;
    RLTransformer model(m);
    nn::AdamW optimizer(nn::decay_groups(model, 1e-3, 0.05));
    nn::save_training_state(good(), model, optimizer, {0, 0, run_config_json(m, tok, SyntheticVideo::class_names())});
    // 16 grey frames of 32 x 32: one clip for `glance predict`.
    std::filesystem::create_directories(dir_ / "clip");
    for (int f = 0; f < 16; ++f) save_png((dir_ / "clip" / (std::to_string(10 + f) + ".png")).string(), Image(32, 32, 100));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string good() const { return (dir_ / "good.safetensors").string(); }
  std::string bad() const { return (dir_ / "bad.safetensors").string(); }

  // bad() = good() with `edit` applied to its tensors and metadata.
  void write_bad(const std::function<void(nn::SafetensorsFile&)>& edit) const {
    nn::SafetensorsFile file = nn::load_safetensors(good());
    edit(file);
    nn::save_safetensors(bad(), file.tensors, file.metadata);
  }
  // bad() = good() with `edit` applied to the JSON of its "glance.config".
  void write_bad_config(const std::function<void(nn::Json&)>& edit) const {
    write_bad([&](nn::SafetensorsFile& file) {
      nn::Json config = nn::Json::parse(file.metadata.at("glance.config"));
      edit(config);
      file.metadata["glance.config"] = config.dump();
    });
  }
  Output predict(const std::string& checkpoint) const {
    return run_glance("predict " + (dir_ / "clip").string() + " --load " + checkpoint);
  }
  // A resumed run of one step on a few built-in clips.
  Output resume(const std::string& checkpoint, const std::string& extra = "") const {
    return run_glance("train --load " + checkpoint + " --depth 1 --steps 2 --batch-size 8 --train-clips 16 "
                      "--val-clips 8 --no-progress --metrics '' " + extra);
  }

  std::filesystem::path dir_;
};

// The message is one line of glance's own (exit 1), naming every piece given.
::testing::AssertionResult refused(const Output& out, const std::vector<std::string>& pieces) {
  if (out.status != 1) return ::testing::AssertionFailure() << "exit status " << out.status << ":\n" << out.text;
  for (const std::string& piece : pieces) {
    if (out.text.find(piece) == std::string::npos) {
      return ::testing::AssertionFailure() << "no '" << piece << "' in:\n" << out.text;
    }
  }
  return ::testing::AssertionSuccess();
}

nn::Json names(const std::vector<std::string>& list) {
  nn::Json a = nn::Json::array();
  for (const auto& n : list) a.push_back(n);
  return a;
}

TEST_F(CheckpointValidation, TheGoodCheckpointPredicts) {
  const Output out = predict(good());
  ASSERT_EQ(out.status, 0) << out.text;
  const nn::Json j = nn::Json::parse(test_support::last_line(out.text));
  double total = 0;
  for (const std::string& name : SyntheticVideo::class_names()) total += j["probabilities"][name].as_double();
  EXPECT_NEAR(total, 1.0, 1e-5);  // 8 probabilities, one per class of the head
}

TEST_F(CheckpointValidation, ClassListMustBeNonEmptyUniqueAndOfTheHeadsSize) {
  write_bad_config([](nn::Json& c) { c.set("classes", nn::Json::array()); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "class list is empty"}));

  std::vector<std::string> nine = SyntheticVideo::class_names();
  nine.push_back("extra");
  write_bad_config([&](nn::Json& c) { c.set("classes", names(nine)); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "9 class names", "8 classes"}));

  std::vector<std::string> twice = SyntheticVideo::class_names();
  twice[3] = twice[1];
  write_bad_config([&](nn::Json& c) { c.set("classes", names(twice)); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "class '" + twice[1] + "' is listed twice"}));
}

TEST_F(CheckpointValidation, ModelSizesAreRangeCheckedBeforeAnythingIsAllocated) {
  // A million blocks of dim 64 would take minutes and gigabytes to build; the refusal is immediate.
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("depth", int64_t{1000000}); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "depth = 1000000"}));
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("image_size", int64_t{16384}); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "image_size = 16384"}));
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("mlp_ratio", -4.0); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "mlp_ratio"}));
}

TEST_F(CheckpointValidation, AConfigLargerThanTheFilesTensorsIsRefusedBeforeTheModelIsBuilt) {
  // Sizes within every range, but a model of 25 million weights in a file of about 0.2 million: building it
  // first would allocate (and randomly initialise) all of them before the tensors are compared; with depth 64
  // and dim 2048, still within the ranges, that would be 13 GB. The refusal comes from the count alone.
  write_bad_config([](nn::Json& c) {
    nn::Json m = c["model"];
    m.set("dim", int64_t{512});
    m.set("heads", int64_t{8});
    m.set("depth", int64_t{8});
    c.set("model", m);
  });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "dim 512, depth 8", "needs at least 25169920 weights"}));
  EXPECT_TRUE(refused(resume(bad()), {"bad.safetensors", "needs at least 25169920 weights"}));
}

TEST_F(CheckpointValidation, UnknownNamesAndEnumValuesAreRefused) {
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("pos_kind", "2d"); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "pos_kind", "'2d'"}));
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("attention_kernel", "magic"); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "attention_kernel", "'magic'"}));
  write_bad_config([](nn::Json& c) { nn::Json m = c["model"]; m.set("dept", int64_t{3}); c.set("model", m); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "unknown field 'dept'"}));
  write_bad_config([](nn::Json& c) { nn::Json t = c["tokenizer"]; t.set("patch", int64_t{4}); c.set("tokenizer", t); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "tokenizer", "patch"}));
}

TEST_F(CheckpointValidation, TensorsMustMatchTheModelInDtypeShapeAndValue) {
  write_bad([](nn::SafetensorsFile& f) { f.tensors["head.bias"] = ops::zeros({8}, DType::Float64); });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "head.bias"}));
  write_bad([](nn::SafetensorsFile& f) {
    Tensor w = ops::clone(f.tensors.at("head.weight"));
    w.data<float>()[5] = std::nanf("");
    f.tensors["head.weight"] = w;
  });
  EXPECT_TRUE(refused(predict(bad()), {"bad.safetensors", "head.weight", "not finite"}));
}

TEST_F(CheckpointValidation, OptimizerMomentsAreCheckedByNameDtypeAndValue) {
  // The moments of the first parameter of group 0, as AdamW names them.
  write_bad([](nn::SafetensorsFile& f) {
    const Tensor m = f.tensors.at("optimizer.0.0.exp_avg");
    f.tensors["optimizer.0.0.exp_avg"] = ops::to_dtype(m, DType::Float64);
  });
  EXPECT_TRUE(refused(resume(bad()), {"bad.safetensors", "0.0.exp_avg", "float64"}));
  write_bad([](nn::SafetensorsFile& f) {
    f.tensors["optimizer.0.00.exp_avg"] = f.tensors.at("optimizer.0.0.exp_avg");
    f.tensors.erase("optimizer.0.0.exp_avg");
  });
  EXPECT_TRUE(refused(resume(bad()), {"bad.safetensors", "'0.00.exp_avg'"}));
  write_bad([](nn::SafetensorsFile& f) {
    Tensor v = ops::clone(f.tensors.at("optimizer.0.0.exp_avg_sq"));
    v.data<float>()[0] = -1.0f;  // a running mean of squares cannot be negative: its square root is NaN
    f.tensors["optimizer.0.0.exp_avg_sq"] = v;
  });
  EXPECT_TRUE(refused(resume(bad()), {"bad.safetensors", "0.0.exp_avg_sq", "negative"}));
}

TEST_F(CheckpointValidation, StepCountersAreIntegersInRange) {
  const auto with = [&](const std::string& key, const std::string& value) {
    write_bad([&](nn::SafetensorsFile& f) { f.metadata[key] = value; });
    return resume(bad());
  };
  // 2^64 - 1 read as an int64 is -1: a run that starts at a negative step never ends.
  EXPECT_TRUE(refused(with("glance.step", "18446744073709551615"), {"bad.safetensors", "glance.step"}));
  // In int64 range, but past the run's last step.
  EXPECT_TRUE(refused(with("glance.step", "9223372036854775807"), {"bad.safetensors", "step 9223372036854775807", "2 steps"}));
  // AdamW's bias correction 1 - beta^steps is 0 or negative for these: every weight would turn NaN.
  EXPECT_TRUE(refused(with("glance.optimizer_steps", "18446744073709551615"), {"bad.safetensors", "glance.optimizer_steps"}));
  EXPECT_TRUE(refused(with("glance.optimizer_steps", "5"), {"bad.safetensors", "glance.optimizer_steps = 5", "glance.step = 0"}));
  EXPECT_TRUE(refused(with("glance.epoch", "+1"), {"bad.safetensors", "glance.epoch"}));
  const Output fine = resume(good());
  EXPECT_EQ(fine.status, 0) << fine.text;
}

TEST_F(CheckpointValidation, OptionsThatContradictTheLoadedConfigAreNamed) {
  EXPECT_TRUE(refused(resume(good(), "--heads 8"), {"--heads 8", "heads = 4", "good.safetensors"}));
  EXPECT_TRUE(refused(resume(good(), "--pos-kind 1d"), {"--pos-kind 1d", "pos_kind = 3d", "good.safetensors"}));
  EXPECT_TRUE(refused(resume(good(), "--no-length-encoding"), {"--no-length-encoding", "length_encoding = true"}));
  // A preset stands for its sizes: "small" has 112-pixel frames, the checkpoint's model 32.
  EXPECT_TRUE(refused(resume(good(), "--preset small"), {"--preset small", "image_size = 32"}));
  // Agreeing options are fine.
  const Output same = resume(good(), "--heads 4 --pos-kind 3d");
  EXPECT_EQ(same.status, 0) << same.text;
}

}  // namespace
