// Training the RLT transformer end to end on the built-in dataset (small enough for a unit test):
// a tiny configuration learns the motion classes to a stated accuracy; a run interrupted and resumed
// from its training state ends bit-identical to an uninterrupted one; the checkpoint reloads for eval.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <unistd.h>
#include <string>

#include "nn/json.h"
#include "nn/training_state.h"
#include "rlt/clip_datasets.h"
#include "rlt/metrics_testing.h"
#include "rlt/trainer.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;
using test_support::metrics_without_timing;

// 8 frames of 32 x 32, tubelets 2 x 8 x 8: a 4 x 4 x 4 grid (64 tubelets), objects of 8 px at 2 px/frame.
SyntheticVideoConfig data_config(int64_t count, uint64_t seed) {
  SyntheticVideoConfig c;
  c.count = count, c.frames = 8, c.size = 32, c.object_size = 8, c.speed = 2, c.seed = seed;
  return c;
}

TrainOptions tiny_options() {
  TrainOptions o;
  o.model.frames = 8, o.model.image_size = 32, o.model.tubelet = 2, o.model.patch = 8, o.model.classes = 8;
  o.model.dim = 32, o.model.depth = 2, o.model.heads = 2;
  o.tokenizer.tubelet = 2, o.tokenizer.patch = 8, o.tokenizer.tau = 0.1;
  o.batch_size = 32, o.lr = 2e-3, o.label_smoothing = 0.0, o.progress = false;
  return o;
}

TEST(Trainer, TinyConfigurationLearnsTheMotionClasses) {
  // Stated accuracy: >= 0.45 on 256 held-out clips of 8 classes (chance 0.125) after 500 steps of RLT
  // (it reaches 0.66 in about 12 s on 2 cores: the margin allows for other builds (portable, sanitizers)
  // taking another path through training).
  SyntheticClips train(data_config(2048, 1)), val(data_config(256, 2));
  TrainOptions o = tiny_options();
  o.steps = 500;
  Trainer trainer(o, train, &val);
  const RunResult r = trainer.run();
  EXPECT_EQ(r.steps, 500);
  EXPECT_GE(r.val.accuracy, 0.45) << "final training loss " << r.final_loss;
  std::cout << "tiny configuration: val accuracy " << r.val.accuracy << ", kept fraction " << r.kept_fraction << "\n";
  EXPECT_LT(r.kept_fraction, 0.7);
  EXPECT_GT(r.kept_fraction, 0.25);  // at least the first time step (1/4 of the grid) is always kept
}

std::vector<float> flat_parameters(RLTransformer& model) {
  std::vector<float> v;
  for (const Tensor& p : model.parameters()) {
    const Tensor c = ops::contiguous(p);
    v.insert(v.end(), c.data<float>(), c.data<float>() + c.numel());
  }
  return v;
}

TEST(Trainer, ResumedRunEqualsUninterruptedRun) {
  const auto dir = std::filesystem::temp_directory_path() / ("glance_trainer_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SyntheticClips train(data_config(96, 3));
  TrainOptions o = tiny_options();
  o.steps = 8;  // 3 batches per epoch: the interruption at step 4 falls inside the second epoch

  Trainer straight(o, train, nullptr);
  straight.run();

  TrainOptions first = o;
  first.stop_at = 4;
  first.save_path = (dir / "state.safetensors").string();
  Trainer interrupted(first, train, nullptr);
  EXPECT_EQ(interrupted.run().steps, 4);

  TrainOptions second = o;
  second.load_path = first.save_path;
  Trainer resumed(second, train, nullptr);
  EXPECT_EQ(resumed.run().steps, 4);
  EXPECT_EQ(flat_parameters(resumed.model()), flat_parameters(straight.model())) << "bit-identical weights";

  // The state file reloads for evaluation (model part only) with its configuration.
  const RunConfig config = read_run_config(first.save_path);
  EXPECT_EQ(config.model.to_json(), o.model.to_json());
  EXPECT_EQ(config.class_names, SyntheticVideo::class_names());
  RLTransformer reloaded(config.model);
  nn::load_model_from_training_state(first.save_path, reloaded);
  EXPECT_EQ(flat_parameters(reloaded), flat_parameters(interrupted.model()));
  std::filesystem::remove_all(dir);
}

// Resuming from any step, mid-epoch or at an epoch's end, is bit-exact: K steps, a save, then the rest from
// the file equal 6 straight steps in every weight and in every line of the metrics log (loss, accuracy, lr,
// tokens kept). The random drop policy and drop path make the data order, the per-example generators and the
// default generator all matter.
TEST(Trainer, ResumeFromAnyStepIsBitExactInWeightsAndMetrics) {
  const auto dir = std::filesystem::temp_directory_path() / ("glance_trainer_resume_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SyntheticClips train(data_config(24, 3));
  TrainOptions o = tiny_options();
  o.batch_size = 8, o.steps = 6;  // 3 batches per epoch
  o.tokenizer.policy = DropPolicy::Random;
  o.model.drop_path = 0.2;
  o.metrics_path = (dir / "straight.jsonl").string();
  Trainer straight(o, train, nullptr);
  straight.run();
  const std::vector<std::string> expected = metrics_without_timing(dir / "straight.jsonl");
  ASSERT_EQ(expected.size(), 6u);

  for (const int64_t k : {3, 4}) {  // at the first epoch's end, inside the second
    SCOPED_TRACE("resumed at step " + std::to_string(k));
    TrainOptions first = o;
    first.stop_at = k;
    first.save_path = (dir / "state.safetensors").string();
    first.metrics_path = (dir / "resumed.jsonl").string();
    Trainer(first, train, nullptr).run();
    TrainOptions second = o;
    second.load_path = first.save_path;
    second.metrics_path = first.metrics_path;  // continued, not truncated
    Trainer resumed(second, train, nullptr);
    EXPECT_EQ(resumed.run().steps, 6 - k);
    EXPECT_EQ(flat_parameters(resumed.model()), flat_parameters(straight.model()));
    EXPECT_EQ(metrics_without_timing(dir / "resumed.jsonl"), expected);
  }
  std::filesystem::remove_all(dir);
}

TEST(Trainer, MismatchedSettingsAreRejected) {
  SyntheticClips train(data_config(64, 1));
  TrainOptions o = tiny_options();
  o.model.classes = 5;
  EXPECT_THROW(Trainer(o, train, nullptr), std::invalid_argument);
  o = tiny_options();
  o.tokenizer.patch = 4;
  EXPECT_THROW(Trainer(o, train, nullptr), std::invalid_argument);
}

// Another dataset's clips, as they are; a test dataset changes one of them.
class Forwarding : public VideoDataset {
 public:
  explicit Forwarding(const VideoDataset& inner) : inner_(inner) {}
  int64_t size() const override { return inner_.size(); }
  int64_t label(int64_t i) const override { return inner_.label(i); }
  std::vector<std::string> class_names() const override { return inner_.class_names(); }
  Tensor train_clip(int64_t i, Generator& gen) const override { return inner_.train_clip(i, gen); }
  Tensor eval_clip(int64_t i, int64_t view) const override { return inner_.eval_clip(i, view); }
  std::string describe() const override { return "forwarding"; }

 protected:
  const VideoDataset& inner_;
};

// A dataset whose clip 5 claims a class the model does not have.
class OneBadLabel : public Forwarding {
 public:
  using Forwarding::Forwarding;
  int64_t label(int64_t i) const override { return i == 5 ? 8 : inner_.label(i); }
  std::string describe() const override { return "one-bad-label"; }
};

// The trainer checks labels while it builds the batch (on a GPU the loss no longer reads them back), naming
// the clip and the label, before any step trains on it.
TEST(Trainer, LabelOutsideTheModelsClassesIsNamed) {
  SyntheticClips clips(data_config(16, 1));
  OneBadLabel train(clips);
  TrainOptions o = tiny_options();
  o.batch_size = 16, o.steps = 1;
  Trainer trainer(o, train, nullptr);
  try {
    trainer.run();
    ADD_FAILURE() << "a label of 8 for 8 classes was trained on";
  } catch (const std::out_of_range& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("clip 5"), std::string::npos) << what;
    EXPECT_NE(what.find("label 8"), std::string::npos) << what;
    EXPECT_NE(what.find("[0, 8)"), std::string::npos) << what;
  }
}

// A dataset whose clip 5 is all NaN (a corrupt frame file decoded, a bad transform): the step that trains on it
// has a NaN loss.
class OneNaNClip : public Forwarding {
 public:
  using Forwarding::Forwarding;
  Tensor train_clip(int64_t i, Generator& gen) const override {
    const Tensor clip = inner_.train_clip(i, gen);
    return i == 5 ? ops::full(clip.shape(), std::nan(""), clip.dtype()) : clip;
  }
  std::string describe() const override { return "one-nan-clip"; }
};

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A run resumed from a good checkpoint and saving over it (--load X --save X) meets a NaN at its first step:
// it stops there naming the step and the loss, and X keeps the good state byte for byte (one batch per
// epoch: without the check the epoch's end would save the NaN weights over it).
TEST(Trainer, NonFiniteLossStopsTheRunAndKeepsTheGoodCheckpoint) {
  const auto dir = std::filesystem::temp_directory_path() / ("glance_trainer_nan_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string state = (dir / "state.safetensors").string();
  SyntheticClips clips(data_config(16, 1));
  TrainOptions o = tiny_options();
  o.batch_size = 16, o.steps = 2, o.save_path = state;
  Trainer(o, clips, nullptr).run();
  const std::string good = file_bytes(state);
  ASSERT_FALSE(good.empty());

  OneNaNClip poisoned(clips);
  o.steps = 4, o.load_path = state;
  Trainer resumed(o, poisoned, nullptr);
  try {
    resumed.run();
    ADD_FAILURE() << "a NaN loss was trained on";
  } catch (const NonFiniteTraining& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("step 3: the loss is NaN"), std::string::npos) << what;
    EXPECT_NE(what.find(state), std::string::npos) << what;
  }
  EXPECT_EQ(file_bytes(state), good) << "the good checkpoint was overwritten";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1) << "a temporary file was left behind";
  std::filesystem::remove_all(dir);
}

}  // namespace
