// Training state checkpoints: a bit-exact round trip of model and optimizer, "resume equals
// uninterrupted" with dropout (the generator state travels in the file), and loads that must fail
// without changing anything (wrong shapes, the wrong optimizer, corrupt metadata).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/dropout.h"
#include "nn/expect_throw.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::expect_throw_containing;
namespace fs = std::filesystem;

// A file path in a fresh per-test directory, removed at the end of the test.
class TrainingState : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("glance_training_state_" + std::string(info->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

class DropNet : public Module {
 public:
  explicit DropNet(int64_t hidden = 16) {
    fc1 = register_module("fc1", std::make_shared<Linear>(6, hidden));
    drop = register_module("drop", std::make_shared<Dropout>(0.1));
    norm = register_module("norm", std::make_shared<LayerNorm>(hidden));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden, 3));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(norm->forward(drop->forward(gelu(fc1->forward(x))))); }
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<LayerNorm> norm;
};

struct Data {
  Tensor x, y;
};
Data make_data() {
  Generator gen(2718);  // its own generator: the data never depends on the default one
  return {ops::randn({12, 6}, DType::Float32, &gen), ops::randint(0, 3, {12}, &gen)};
}

std::unique_ptr<AdamW> make_optimizer(const Module& model) {
  return std::make_unique<AdamW>(decay_groups(model, 1e-2, 0.05));
}

float train_step(DropNet& model, Optimizer& opt, const Data& data) {
  opt.zero_grad();
  Tensor loss = cross_entropy(model.forward(data.x), data.y);
  loss.backward();
  opt.step();
  return static_cast<float>(loss.item());
}

// Raw bytes of every tensor, by name: equal maps mean bit-identical values.
std::map<std::string, std::string> bytes_of(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, std::string> out;
  for (auto& [name, t] : tensors) {
    Tensor c = ops::contiguous(t);
    out[name] = std::string(static_cast<const char*>(c.raw_data()), c.numel() * c.itemsize());
  }
  return out;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

// Bit equality of two named tensor sets, reporting the first difference by name (not a byte dump).
::testing::AssertionResult same_tensors(const std::map<std::string, std::string>& got,
                                        const std::map<std::string, std::string>& expected) {
  for (auto& [name, bytes] : expected) {
    auto it = got.find(name);
    if (it == got.end()) return ::testing::AssertionFailure() << "'" << name << "' is missing";
    if (it->second != bytes) return ::testing::AssertionFailure() << "'" << name << "' differs";
  }
  for (auto& [name, _] : got)
    if (!expected.count(name)) return ::testing::AssertionFailure() << "unexpected '" << name << "'";
  return ::testing::AssertionSuccess();
}

TEST_F(TrainingState, RoundTripIsBitExactForModelOptimizerAndProgress) {
  Data data = make_data();
  manual_seed(1);
  DropNet model;
  auto opt = make_optimizer(model);
  for (int i = 0; i < 2; ++i) train_step(model, *opt, data);
  PhiloxState rng = default_generator().state();
  save_training_state(path("state.safetensors"), model, *opt, {.step = 2, .epoch = 1, .config = "{\"hidden\": 16}"});
  EXPECT_TRUE(fs::exists(path("state.safetensors")));
  for (auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string(), "state.safetensors") << "a temporary file was left behind";
  }

  manual_seed(999);
  DropNet fresh;
  auto fresh_opt = make_optimizer(fresh);
  ASSERT_FALSE(same_tensors(bytes_of(fresh.state_dict()), bytes_of(model.state_dict())));
  ops::randn({17});  // move the default generator elsewhere
  TrainingProgress progress = load_training_state(path("state.safetensors"), fresh, *fresh_opt);
  EXPECT_EQ(progress.step, 2);
  EXPECT_EQ(progress.epoch, 1);
  EXPECT_EQ(progress.config, "{\"hidden\": 16}");
  EXPECT_TRUE(same_tensors(bytes_of(fresh.state_dict()), bytes_of(model.state_dict())));
  auto moments = opt->state();
  EXPECT_EQ(moments.size(), 2 * model.named_parameters().size());
  EXPECT_TRUE(same_tensors(bytes_of(fresh_opt->state()), bytes_of(moments)));
  EXPECT_EQ(fresh_opt->steps(), 2);
  EXPECT_EQ(default_generator().state().seed, rng.seed);
  EXPECT_EQ(default_generator().state().offset, rng.offset);

  // The file is plain safetensors: the names a PyTorch reader would see.
  SafetensorsFile file = load_safetensors(path("state.safetensors"));
  EXPECT_TRUE(file.tensors.count("fc1.weight"));
  EXPECT_TRUE(file.tensors.count("optimizer.0.0.exp_avg"));
  EXPECT_EQ(file.metadata.at("glance.step"), "2");
}

TEST_F(TrainingState, ResumeEqualsUninterruptedTrainingWithDropout) {
  Data data = make_data();

  // Six steps straight.
  manual_seed(1);
  DropNet straight;
  auto straight_opt = make_optimizer(straight);
  manual_seed(42);
  std::vector<float> straight_losses;
  for (int i = 0; i < 6; ++i) straight_losses.push_back(train_step(straight, *straight_opt, data));

  // Three steps, save, then a fresh model (another init) and optimizer, load, three more.
  manual_seed(1);
  DropNet first;
  auto first_opt = make_optimizer(first);
  manual_seed(42);
  std::vector<float> losses;
  for (int i = 0; i < 3; ++i) losses.push_back(train_step(first, *first_opt, data));
  save_training_state(path("resume.safetensors"), first, *first_opt, {.step = 3, .epoch = 0, .config = ""});

  manual_seed(31337);
  DropNet resumed;
  auto resumed_opt = make_optimizer(resumed);
  ops::rand({5});  // the default generator is somewhere else entirely now
  TrainingProgress progress = load_training_state(path("resume.safetensors"), resumed, *resumed_opt);
  EXPECT_EQ(progress.step, 3);
  for (int i = 0; i < 3; ++i) losses.push_back(train_step(resumed, *resumed_opt, data));

  ASSERT_EQ(losses.size(), straight_losses.size());
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_TRUE(same_bits(losses[i], straight_losses[i]))
        << "step " << i << ": " << losses[i] << " resumed vs " << straight_losses[i] << " straight";
  }
  EXPECT_TRUE(same_tensors(bytes_of(resumed.state_dict()), bytes_of(straight.state_dict())));
  EXPECT_TRUE(same_tensors(bytes_of(resumed_opt->state()), bytes_of(straight_opt->state())));
  EXPECT_EQ(resumed_opt->steps(), 6);
  // Dropout was really on (training mode): the losses are not those of a deterministic model.
  EXPECT_TRUE(straight.drop->is_training());
}

TEST_F(TrainingState, LoadingIntoAModelOfAnotherShapeThrowsAndChangesNothing) {
  Data data = make_data();
  manual_seed(1);
  DropNet model(16);
  auto opt = make_optimizer(model);
  train_step(model, *opt, data);
  save_training_state(path("s.safetensors"), model, *opt, {.step = 1, .epoch = 0, .config = ""});

  manual_seed(2);
  DropNet other(17);
  auto other_opt = make_optimizer(other);
  train_step(other, *other_opt, data);
  auto model_before = bytes_of(other.state_dict());
  auto opt_before = bytes_of(other_opt->state());
  PhiloxState rng_before = default_generator().state();
  expect_throw_containing([&] { load_training_state(path("s.safetensors"), other, *other_opt); },
                          {"s.safetensors", "fc1.", "[16]", "[17]"});
  EXPECT_TRUE(same_tensors(bytes_of(other.state_dict()), model_before));
  EXPECT_TRUE(same_tensors(bytes_of(other_opt->state()), opt_before));
  EXPECT_EQ(other_opt->steps(), 1);
  EXPECT_EQ(default_generator().state().offset, rng_before.offset);
  EXPECT_EQ(default_generator().state().seed, rng_before.seed);
}

TEST_F(TrainingState, AnOptimizerMismatchAlsoChangesNothing) {
  // The model matches the file but the optimizer does not (SGD with momentum vs AdamW's moments):
  // the load must fail before the model is touched.
  Data data = make_data();
  manual_seed(1);
  DropNet model;
  auto opt = make_optimizer(model);
  train_step(model, *opt, data);
  save_training_state(path("adamw.safetensors"), model, *opt, {.step = 1, .epoch = 0, .config = ""});

  manual_seed(2);
  DropNet other;
  SGD sgd(decay_groups(other, 0.1, 0.0), SGDOptions{0.9, 0.0, false});
  auto before = bytes_of(other.state_dict());
  EXPECT_THROW(load_training_state(path("adamw.safetensors"), other, sgd), std::exception);
  EXPECT_TRUE(same_tensors(bytes_of(other.state_dict()), before)) << "the model was overwritten although the load failed";
  EXPECT_EQ(sgd.steps(), 0);
}

TEST_F(TrainingState, AnyGeneratorSeedRoundTrips) {
  // Seeds are uint64: one above 2^63 (a hashed seed, say) must save and load like any other.
  const uint64_t seed = 0x9E3779B97F4A7C15ULL;
  manual_seed(1);
  DropNet model;
  auto opt = make_optimizer(model);
  manual_seed(seed);
  ops::rand({3});
  PhiloxState saved = default_generator().state();
  save_training_state(path("seed.safetensors"), model, *opt, {.step = 0, .epoch = 0, .config = ""});
  manual_seed(7);
  EXPECT_NO_THROW(load_training_state(path("seed.safetensors"), model, *opt));
  EXPECT_EQ(default_generator().state().seed, saved.seed);
  EXPECT_EQ(default_generator().state().offset, saved.offset);
}

TEST_F(TrainingState, CorruptOrMissingMetadataIsRejectedWithAMessage) {
  manual_seed(1);
  DropNet model;
  auto opt = make_optimizer(model);
  std::map<std::string, Tensor> tensors = model.state_dict();
  for (auto& [k, t] : opt->state()) tensors["optimizer." + k] = t;
  std::map<std::string, std::string> good{{"glance.config", "{}"},       {"glance.step", "4"},
                                          {"glance.epoch", "0"},         {"glance.optimizer_steps", "4"},
                                          {"glance.rng_seed", "1"},      {"glance.rng_offset", "100"}};
  // The hand-written file with good metadata loads.
  save_safetensors(path("good.safetensors"), tensors, good);
  manual_seed(5);
  DropNet target;
  auto target_opt = make_optimizer(target);
  EXPECT_EQ(load_training_state(path("good.safetensors"), target, *target_opt).step, 4);
  EXPECT_EQ(default_generator().state().offset, 100u);

  manual_seed(6);
  DropNet victim;
  auto victim_opt = make_optimizer(victim);
  auto before = bytes_of(victim.state_dict());
  struct Case {
    std::string key, value;  // value "<erase>" removes the key
    std::vector<std::string> expected;
  };
  std::vector<Case> cases = {
      {"glance.step", "abc", {"glance.step", "abc"}},
      {"glance.step", "12abc", {"glance.step", "12abc"}},
      {"glance.step", "", {"glance.step"}},
      {"glance.epoch", "<erase>", {"glance.epoch"}},
      {"glance.optimizer_steps", "1.5", {"glance.optimizer_steps"}},
      {"glance.rng_offset", "<erase>", {"glance.rng_offset"}},
      {"glance.step", "+4", {"glance.step", "'+4'"}},
      {"glance.step", " 4", {"glance.step", "' 4'"}},
      // 2^64 - 1 would read back as step -1; 2^63 is past int64.
      {"glance.step", "18446744073709551615", {"glance.step", "out of range"}},
      {"glance.step", "9223372036854775808", {"glance.step", "out of range"}},
      {"glance.rng_seed", "18446744073709551616", {"glance.rng_seed", "not an integer"}},
      // AdamW's bias correction 1 - beta^steps would be 0: every weight NaN after one step.
      {"glance.optimizer_steps", "5", {"glance.optimizer_steps = 5", "glance.step = 4"}},
      {"glance.epoch", "9", {"glance.epoch = 9", "glance.step = 4"}},
  };
  for (const Case& c : cases) {
    auto meta = good;
    if (c.value == "<erase>") meta.erase(c.key);
    else meta[c.key] = c.value;
    save_safetensors(path("bad.safetensors"), tensors, meta);
    SCOPED_TRACE(c.key + " = '" + c.value + "'");
    expect_throw_containing([&] { load_training_state(path("bad.safetensors"), victim, *victim_opt); }, c.expected);
    EXPECT_TRUE(same_tensors(bytes_of(victim.state_dict()), before));
    EXPECT_EQ(victim_opt->steps(), 0);
  }
  EXPECT_THROW(load_training_state(path("does_not_exist.safetensors"), victim, *victim_opt), std::exception);
}

// AdamW takes back exactly the names it writes, each with its parameter's dtype and shape, and second moments
// that are not negative; anything else is named and nothing is copied.
TEST_F(TrainingState, AdamWStateIsTakenOnlyByExactNameDtypeAndSign) {
  manual_seed(3);
  DropNet model;
  auto opt = make_optimizer(model);
  const std::map<std::string, Tensor> good = opt->state();
  ASSERT_TRUE(good.count("0.0.exp_avg"));
  auto target = make_optimizer(model);
  const auto before = bytes_of(target->state());
  auto refused = [&](std::map<std::string, Tensor> state, const std::vector<std::string>& pieces) {
    expect_throw_containing([&] { target->load_state(state, 1); }, pieces);
    EXPECT_TRUE(same_tensors(bytes_of(target->state()), before));
  };
  auto renamed = good;
  renamed["0.00.exp_avg"] = renamed.at("0.0.exp_avg");
  renamed.erase("0.0.exp_avg");
  refused(renamed, {"unexpected state entry '0.00.exp_avg'", "missing state entry '0.0.exp_avg'"});
  auto wide = good;
  wide["0.0.exp_avg"] = ops::to_dtype(wide.at("0.0.exp_avg"), DType::Float64);
  refused(wide, {"'0.0.exp_avg' is float64", "the parameter is float32"});
  auto negative = good;
  negative["0.0.exp_avg_sq"] = ops::full(negative.at("0.0.exp_avg_sq").shape(), -1.0, DType::Float32);
  refused(negative, {"'0.0.exp_avg_sq' has a negative entry"});
  target->load_state(good, 1);  // the real thing loads
  EXPECT_EQ(target->steps(), 1);
}

}  // namespace

namespace {

// A data-parallel run's checkpoint says how many ranks wrote it; a one-process checkpoint is as before, without
// the key (its bytes do not change).
TEST_F(TrainingState, TheRanksOfTheRunTravelInTheFile) {
  Linear model(3, 2);
  SGD optimizer({ParamGroup{model.parameters(), 0.1, 0.0, 1.0}});
  save_training_state(path("one.safetensors"), model, optimizer, {4, 1, "{}"});
  EXPECT_EQ(load_safetensors(path("one.safetensors")).metadata.count("glance.ranks"), 0u);
  EXPECT_EQ(load_training_state(path("one.safetensors"), model, optimizer).ranks, 1);
  save_training_state(path("two.safetensors"), model, optimizer, {4, 1, "{}", 2});
  EXPECT_EQ(load_safetensors(path("two.safetensors")).metadata.at("glance.ranks"), "2");
  EXPECT_EQ(load_training_state(path("two.safetensors"), model, optimizer).ranks, 2);
}

}  // namespace
