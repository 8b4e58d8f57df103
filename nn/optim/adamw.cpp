#include "nn/optim/adamw.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "nn/fused.h"

namespace glance::nn {

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options) : Optimizer(std::move(groups)), options_(options) {
  for (const ParamGroup& g : groups_) {
    m_.emplace_back();
    v_.emplace_back();
    for (const Tensor& p : g.params) {
      m_.back().push_back(ops::zeros_like(p));
      v_.back().push_back(ops::zeros_like(p));
    }
  }
}

void AdamW::step() {
  autograd::NoGradGuard no_grad;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double correction1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& group = groups_[gi];
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      Tensor& p = group.params[pi];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      Tensor& m = m_[gi][pi];
      Tensor& v = v_[gi][pi];
      Backend* fused = fused_backend(p.device(), FusedOp::AdamWStep);
      if (fused && p.is_contiguous() && g.is_contiguous() && g.dtype() == p.dtype()) {
        // One pass over p, g, m, v instead of the ten below (Backend::adamw_step); the same update.
        fused->adamw_step(p, g, m, v, AdamWParams{group.lr, b1, b2, options_.eps, group.weight_decay, steps_});
        continue;
      }
      if (group.weight_decay != 0) ops::copy_(p, p * (1.0 - group.lr * group.weight_decay));  // decoupled decay
      ops::copy_(m, m * b1 + g * (1.0 - b1));
      ops::copy_(v, v * b2 + g * g * (1.0 - b2));
      Tensor denom = sqrt(v / correction2) + options_.eps;
      ops::add_(p, m / denom, -group.lr / correction1);
    }
  }
}

std::map<std::string, Tensor> AdamW::state() const {
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < m_.size(); ++g) {
    for (size_t p = 0; p < m_[g].size(); ++p) {
      std::string key = std::to_string(g) + "." + std::to_string(p);
      out[key + ".exp_avg"] = m_[g][p];
      out[key + ".exp_avg_sq"] = v_[g][p];
    }
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  size_t expected = 0;
  for (const auto& group : m_) expected += 2 * group.size();
  if (state.size() != expected) {
    throw std::invalid_argument("AdamW: state has " + std::to_string(state.size()) + " tensors, expected " +
                                std::to_string(expected));
  }
  for (const auto& [key, t] : state) {
    size_t g = 0, p = 0;
    char slot[32] = {0};
    bool ok = std::sscanf(key.c_str(), "%zu.%zu.%31s", &g, &p, slot) == 3 && g < m_.size() && p < m_[g].size();
    std::string name = slot;
    ok = ok && (name == "exp_avg" || name == "exp_avg_sq") && t.shape() == m_[g][p].shape();
    if (!ok) throw std::invalid_argument("AdamW: unexpected state entry '" + key + "' " + shape_str(t.shape()));
  }
  for (const auto& [key, t] : state) {
    size_t g = 0, p = 0;
    char slot[32] = {0};
    std::sscanf(key.c_str(), "%zu.%zu.%31s", &g, &p, slot);
    ops::copy_(std::string(slot) == "exp_avg" ? m_[g][p] : v_[g][p], t);
  }
  steps_ = steps;
}

}  // namespace glance::nn
