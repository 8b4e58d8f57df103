#include "nn/training_state.h"

#include <stdexcept>

#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace glance::nn {

namespace {
const std::string kOptimizerPrefix = "optimizer.";

// Metadata values are decimal text. Generator seeds and offsets use the whole uint64 range.
uint64_t parse_unsigned(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("load_training_state: " + path + ": metadata has no '" + key + "'");
  try {
    size_t used = 0;
    if (it->second.empty() || it->second[0] == '-') throw std::invalid_argument("negative");
    unsigned long long v = std::stoull(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing text");
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error("load_training_state: " + path + ": metadata '" + key + "' is not an integer: '" +
                             it->second + "'");
  }
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
  save_safetensors(path, tensors, meta);
}

TrainingProgress load_training_state(const std::string& path, Module& model, Optimizer& optimizer) {
  SafetensorsFile file = load_safetensors(path);
  std::map<std::string, Tensor> model_part, optimizer_part;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptimizerPrefix, 0) == 0) optimizer_part[name.substr(kOptimizerPrefix.size())] = t;
    else model_part[name] = t;
  }
  TrainingProgress progress;
  progress.step = static_cast<int64_t>(parse_unsigned(file.metadata, "glance.step", path));
  progress.epoch = static_cast<int64_t>(parse_unsigned(file.metadata, "glance.epoch", path));
  auto optimizer_steps = static_cast<int64_t>(parse_unsigned(file.metadata, "glance.optimizer_steps", path));
  PhiloxState rng{parse_unsigned(file.metadata, "glance.rng_seed", path),
                  parse_unsigned(file.metadata, "glance.rng_offset", path)};
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
  try {
    model.load_state_dict(model_part, true);
  } catch (const std::exception& e) {
    throw std::runtime_error("load_model_from_training_state: " + path + ": " + e.what());
  }
  TrainingProgress progress;
  if (file.metadata.count("glance.step")) progress.step = static_cast<int64_t>(parse_unsigned(file.metadata, "glance.step", path));
  if (file.metadata.count("glance.epoch")) progress.epoch = static_cast<int64_t>(parse_unsigned(file.metadata, "glance.epoch", path));
  progress.config = file.metadata.count("glance.config") ? file.metadata.at("glance.config") : "";
  return progress;
}

}  // namespace glance::nn
