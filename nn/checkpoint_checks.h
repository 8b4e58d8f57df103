// The checks a training-state file (nn/training_state.h) passes before any of it is used, beyond the format's
// own (nn/safetensors.h): its counters are decimal integers in range and consistent with each other, and every
// floating-point tensor in it holds finite numbers (a NaN weight or moment would spread to every weight within
// a step, and a run would go on training garbage).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace glance::nn {

// The metadata value of `key`: decimal digits only (no sign, no space), at most `most`. Throws naming the file,
// the key and the text.
uint64_t metadata_counter(const std::map<std::string, std::string>& metadata, const std::string& key,
                          const std::string& path, uint64_t most);
// The optimizer steps at most once per training step, and an epoch has at least one step.
void check_counters_consistent(int64_t step, int64_t epoch, int64_t optimizer_steps, const std::string& path);
// Throws "<context>: <path>: tensor '<name>' is not finite (...)" naming the first element that is NaN or
// infinite. Loading refuses such a file, and saving refuses to write such a state.
void check_all_finite(const std::map<std::string, Tensor>& tensors, const std::string& path, const std::string& context);

}  // namespace glance::nn
