// A whole training run's state in one safetensors file, so training can stop and resume exactly:
//   tensors:  the model's parameters and buffers under their PyTorch names, and the optimizer's
//             moments under "optimizer.<group>.<param>.<slot>"
//   metadata: "glance.config" (the model config as JSON text, for the caller), "glance.step",
//             "glance.epoch", "glance.optimizer_steps", "glance.rng_seed", "glance.rng_offset", and
//             "glance.ranks" for a data-parallel run (the state is every rank's; rank 0 writes it)
// Loading checks that every name and shape matches the model and optimizer before changing anything.
#pragma once
#include <cstdint>
#include <string>

#include "nn/module.h"
#include "nn/optim/optimizer.h"

namespace glance::nn {

struct TrainingProgress {
  int64_t step = 0;
  int64_t epoch = 0;
  std::string config;  // free text (JSON) describing the model, stored verbatim
  int64_t ranks = 1;   // the data-parallel ranks of the run that wrote it ("glance.ranks", stored when > 1)
};

// The prefix of the optimizer's tensors in a training-state file; every other tensor is the model's.
inline const std::string kOptimizerPrefix = "optimizer.";

// Writes atomically. Saves the default generator's state too, so dropout masks continue identically.
void save_training_state(const std::string& path, const Module& model, const Optimizer& optimizer,
                         const TrainingProgress& progress);
TrainingProgress load_training_state(const std::string& path, Module& model, Optimizer& optimizer);
// The model's part of a training-state file only (for evaluation and prediction): the optimizer's
// tensors are skipped, everything else is validated against the model as load_training_state does.
TrainingProgress load_model_from_training_state(const std::string& path, Module& model);

}  // namespace glance::nn
