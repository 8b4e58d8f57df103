#include "nn/optim/optimizer.h"

#include <stdexcept>

namespace glance::nn {

std::vector<ParamGroup> decay_groups(const Module& model, double lr, double weight_decay) {
  ParamGroup decay{{}, lr, weight_decay, 1.0}, no_decay{{}, lr, 0.0, 1.0};
  for (auto& [name, t] : model.named_parameters()) {
    bool skip = t.dim() <= 1 || name.find("pos_embed") != std::string::npos || name.find("cls_token") != std::string::npos;
    (skip ? no_decay : decay).params.push_back(t);
  }
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(decay);
  if (!no_decay.params.empty()) groups.push_back(no_decay);
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (const Tensor& p : groups_[g].params) {
      if (!p.requires_grad() || !p.is_leaf()) {
        throw std::invalid_argument("Optimizer: group " + std::to_string(g) + " has a tensor " + shape_str(p.shape()) +
                                    " that is not a leaf requiring grad");
      }
    }
  }
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  for (ParamGroup& g : groups_) g.lr = lr * g.lr_scale;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  if (!state.empty()) throw std::invalid_argument("Optimizer: this optimizer keeps no state, got " + std::to_string(state.size()) + " tensors");
  steps_ = steps;
}

}  // namespace glance::nn
