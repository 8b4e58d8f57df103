#include "nn/training_state.h"

#include <cstdint>
#include <stdexcept>

#include "nn/checkpoint_checks.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace glance::nn {

namespace {
constexpr uint64_t kMaxCounter = INT64_MAX;  // steps and epochs are int64 in the trainer

// The progress counters of `file`, each checked (nn/checkpoint_checks.h). `required`: false for the model-only
// load, which accepts a file without them.
struct Counters {
  int64_t step = 0, epoch = 0, optimizer_steps = 0;
};
Counters read_counters(const SafetensorsFile& file, const std::string& path, bool required) {
  Counters c;
  auto counter = [&](const std::string& key) {
    if (!required && !file.metadata.count(key)) return int64_t{0};
    return static_cast<int64_t>(metadata_counter(file.metadata, key, path, kMaxCounter));
  };
  c.step = counter("glance.step");
  c.epoch = counter("glance.epoch");
  c.optimizer_steps = counter("glance.optimizer_steps");
  check_counters_consistent(c.step, c.epoch, c.optimizer_steps, path);
  return c;
}
}  // namespace

void save_training_state(const std::string& path, const Module& model, const Optimizer& optimizer,
                         const TrainingProgress& progress) {
  std::map<std::string, Tensor> tensors = model.state_dict();
  for (auto& [key, t] : optimizer.state()) tensors[kOptimizerPrefix + key] = t;
  PhiloxState rng = default_generator().state();
  std::map<std::string, std::string> meta{
      {"glance.config", progress.config},
      {"glance.step", std::to_string(progress.step)},
      {"glance.epoch", std::to_string(progress.epoch)},
      {"glance.optimizer_steps", std::to_string(optimizer.steps())},
      {"glance.rng_seed", std::to_string(rng.seed)},
      {"glance.rng_offset", std::to_string(rng.offset)},
  };
  if (progress.ranks != 1) meta["glance.ranks"] = std::to_string(progress.ranks);
  // A NaN state is never written: it would replace the last good checkpoint with one that cannot train.
  check_all_finite(tensors, path, "save_training_state: refusing to write a non-finite state");
  save_safetensors(path, tensors, meta);
}

TrainingProgress load_training_state(const std::string& path, Module& model, Optimizer& optimizer) {
  SafetensorsFile file = load_safetensors(path);
  std::map<std::string, Tensor> model_part, optimizer_part;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptimizerPrefix, 0) == 0) optimizer_part[name.substr(kOptimizerPrefix.size())] = t;
    else model_part[name] = t;
  }
  const Counters counters = read_counters(file, path, /*required=*/true);
  TrainingProgress progress;
  progress.step = counters.step;
  progress.epoch = counters.epoch;
  if (file.metadata.count("glance.ranks")) {
    progress.ranks = static_cast<int64_t>(metadata_counter(file.metadata, "glance.ranks", path, 1u << 20));
  }
  const int64_t optimizer_steps = counters.optimizer_steps;
  PhiloxState rng{metadata_counter(file.metadata, "glance.rng_seed", path, UINT64_MAX),
                  metadata_counter(file.metadata, "glance.rng_offset", path, UINT64_MAX)};
  check_all_finite(file.tensors, path, "load_training_state");
  progress.config = file.metadata.count("glance.config") ? file.metadata.at("glance.config") : "";
  // Each load_* validates everything before it changes anything. The model goes first; if the
  // optimizer then turns out not to match, the model's previous values are put back.
  std::map<std::string, Tensor> previous;
  for (auto& [key, t] : model.state_dict()) previous[key] = ops::clone(t);
  try {
    model.load_state_dict(model_part, true);
  } catch (const std::exception& e) {
    throw std::runtime_error("load_training_state: " + path + ": " + e.what());
  }
  try {
    optimizer.load_state(optimizer_part, optimizer_steps);
  } catch (const std::exception& e) {
    model.load_state_dict(previous, true);
    throw std::runtime_error("load_training_state: " + path + ": " + e.what());
  }
  default_generator().set_state(rng);
  return progress;
}

TrainingProgress load_model_from_training_state(const std::string& path, Module& model) {
  SafetensorsFile file = load_safetensors(path);
  std::map<std::string, Tensor> model_part;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptimizerPrefix, 0) != 0) model_part[name] = t;
  }
  const Counters counters = read_counters(file, path, /*required=*/false);
  check_all_finite(model_part, path, "load_model_from_training_state");
  try {
    model.load_state_dict(model_part, true);
  } catch (const std::exception& e) {
    throw std::runtime_error("load_model_from_training_state: " + path + ": " + e.what());
  }
  TrainingProgress progress;
  progress.step = counters.step;
  progress.epoch = counters.epoch;
  progress.config = file.metadata.count("glance.config") ? file.metadata.at("glance.config") : "";
  return progress;
}

}  // namespace glance::nn
