#include "nn/optim/sgd.h"

#include <cstdio>
#include <stdexcept>

namespace glance::nn {

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer(std::move(groups)), options_(options) {
  if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0)) {
    throw std::invalid_argument("SGD: nesterov needs momentum > 0 and dampening 0");
  }
  for (const ParamGroup& g : groups_) momentum_.emplace_back(g.params.size());
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& group = groups_[gi];
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      Tensor& p = group.params[pi];
      if (!p.grad().defined()) continue;
      Tensor d = p.grad();
      if (group.weight_decay != 0) d = d + p * group.weight_decay;
      if (options_.momentum != 0) {
        Tensor& buf = momentum_[gi][pi];
        buf = buf.defined() ? buf * options_.momentum + d * (1.0 - options_.dampening) : ops::clone(d);
        d = options_.nesterov ? d + buf * options_.momentum : buf;
      }
      ops::add_(p, d, -group.lr);  // in place: every handle to p sees the update
    }
  }
}

std::map<std::string, Tensor> SGD::state() const {
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < momentum_.size(); ++g)
    for (size_t p = 0; p < momentum_[g].size(); ++p)
      if (momentum_[g][p].defined()) out[std::to_string(g) + "." + std::to_string(p) + ".momentum"] = momentum_[g][p];
  return out;
}

void SGD::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  std::vector<std::vector<Tensor>> loaded;
  for (const ParamGroup& g : groups_) loaded.emplace_back(g.params.size());
  for (const auto& [key, t] : state) {
    size_t g = 0, p = 0;
    char slot[32] = {0};
    if (std::sscanf(key.c_str(), "%zu.%zu.%31s", &g, &p, slot) != 3 || std::string(slot) != "momentum" ||
        g >= groups_.size() || p >= groups_[g].params.size() || t.shape() != groups_[g].params[p].shape()) {
      throw std::invalid_argument("SGD: unexpected state entry '" + key + "' " + shape_str(t.shape()));
    }
    loaded[g][p] = ops::to_device(ops::clone(t), groups_[g].params[p].device());
  }
  momentum_ = std::move(loaded);
  steps_ = steps;
}

}  // namespace glance::nn
