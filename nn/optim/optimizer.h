// Optimizers update parameters from their .grad, group by group (each group has its own learning
// rate and weight decay: e.g. no decay on biases and norms).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace glance::nn {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double lr_scale = 1.0;  // set_lr(x) gives this group x * lr_scale
};

// Two groups in the usual ViT recipe: weights with `weight_decay`, and without decay every 1-D tensor
// (biases, LayerNorm weights) plus position embeddings and class tokens.
std::vector<ParamGroup> decay_groups(const Module& model, double lr, double weight_decay);

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // one update from the current gradients (recording nothing)
  void zero_grad();
  void set_lr(double lr);  // every group: lr * its lr_scale
  std::vector<ParamGroup>& groups() { return groups_; }
  int64_t steps() const { return steps_; }

  // Optimizer state for checkpoints: tensors named "<group>.<param>.<slot>" and the step count.
  virtual std::map<std::string, Tensor> state() const { return {}; }
  virtual void load_state(const std::map<std::string, Tensor>& state, int64_t steps);

 protected:
  std::vector<ParamGroup> groups_;
  int64_t steps_ = 0;
};

}  // namespace glance::nn
