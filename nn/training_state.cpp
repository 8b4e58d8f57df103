#include "nn/training_state.h"

#include <stdexcept>

#include "nn/safetensors.h"
#include "tensor/random.h"

namespace glance::nn {

namespace {
const std::string kOptimizerPrefix = "optimizer.";

int64_t parse_integer(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("load_training_state: " + path + ": metadata has no '" + key + "'");
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
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
  progress.step = parse_integer(file.metadata, "glance.step", path);
  progress.epoch = parse_integer(file.metadata, "glance.epoch", path);
  int64_t optimizer_steps = parse_integer(file.metadata, "glance.optimizer_steps", path);
  PhiloxState rng{static_cast<uint64_t>(parse_integer(file.metadata, "glance.rng_seed", path)),
                  static_cast<uint64_t>(parse_integer(file.metadata, "glance.rng_offset", path))};
  progress.config = file.metadata.count("glance.config") ? file.metadata.at("glance.config") : "";
  try {
    model.load_state_dict(model_part, true);  // validates all names and shapes before copying
    optimizer.load_state(optimizer_part, optimizer_steps);
  } catch (const std::exception& e) {
    throw std::runtime_error("load_training_state: " + path + ": " + e.what());
  }
  default_generator().set_state(rng);
  return progress;
}

}  // namespace glance::nn
