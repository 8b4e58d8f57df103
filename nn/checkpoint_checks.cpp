#include "nn/checkpoint_checks.h"

#include <cmath>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::nn {

uint64_t metadata_counter(const std::map<std::string, std::string>& meta, const std::string& key,
                          const std::string& path, uint64_t most) {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("load_training_state: " + path + ": metadata has no '" + key + "'");
  const std::string& text = it->second;
  // Digits only: std::stoull alone would take "+1", " 1" and "-1" (as 2^64 - 1).
  bool ok = !text.empty() && text.size() <= 20;
  uint64_t value = 0;
  for (size_t i = 0; ok && i < text.size(); ++i) {
    const char c = text[i];
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    ok = c >= '0' && c <= '9' && value <= (UINT64_MAX - digit) / 10;
    if (ok) value = value * 10 + digit;
  }
  if (!ok) {
    throw std::runtime_error("load_training_state: " + path + ": metadata '" + key + "' is not an integer: '" + text + "'");
  }
  if (value > most) {
    throw std::runtime_error("load_training_state: " + path + ": metadata '" + key + "' = " + text +
                             " is out of range (at most " + std::to_string(most) + ")");
  }
  return value;
}

void check_counters_consistent(int64_t step, int64_t epoch, int64_t optimizer_steps, const std::string& path) {
  if (optimizer_steps > step) {
    throw std::runtime_error("load_training_state: " + path + ": metadata glance.optimizer_steps = " +
                             std::to_string(optimizer_steps) + " exceeds glance.step = " + std::to_string(step) +
                             " (the optimizer steps at most once per training step)");
  }
  if (epoch > step) {
    throw std::runtime_error("load_training_state: " + path + ": metadata glance.epoch = " + std::to_string(epoch) +
                             " exceeds glance.step = " + std::to_string(step) + " (an epoch has at least one step)");
  }
}

void check_all_finite(const std::map<std::string, Tensor>& tensors, const std::string& path, const std::string& context) {
  for (const auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    const std::vector<double> values = ops::to_dtype(ops::contiguous(t), DType::Float64).to_vector<double>();
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        throw std::runtime_error(context + ": " + path + ": tensor '" + name + "' is not finite (element " +
                                 std::to_string(i) + " is " + std::to_string(values[i]) + ")");
      }
    }
  }
}

}  // namespace glance::nn
