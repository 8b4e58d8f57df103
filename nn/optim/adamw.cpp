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
  // Names must be exactly those state() writes ("<group>.<param>.exp_avg" in decimal without leading zeros),
  // each with its parameter's dtype and shape; the second moments are running means of squares, never negative.
  // Everything is checked before anything is copied.
  std::map<std::string, Tensor> mine = AdamW::state();
  std::vector<std::string> problems;
  for (const auto& [key, t] : state) {
    auto it = mine.find(key);
    if (it == mine.end()) {
      problems.push_back("unexpected state entry '" + key + "' " + shape_str(t.shape()));
    } else if (t.dtype() != it->second.dtype() || t.shape() != it->second.shape()) {
      problems.push_back("'" + key + "' is " + dtype_name(t.dtype()) + " " + shape_str(t.shape()) + ", the parameter is " +
                         dtype_name(it->second.dtype()) + " " + shape_str(it->second.shape()));
    } else if (key.ends_with(".exp_avg_sq") && ops::min(ops::to_dtype(t, DType::Float64)).item() < 0) {
      problems.push_back("'" + key + "' has a negative entry (a mean of squares)");
    }
  }
  for (const auto& [key, t] : mine) {
    if (!state.count(key)) problems.push_back("missing state entry '" + key + "' " + shape_str(t.shape()));
  }
  if (steps < 0) problems.push_back("negative step count " + std::to_string(steps));
  if (!problems.empty()) {
    std::string message = "AdamW: ";
    for (size_t i = 0; i < problems.size() && i < 8; ++i) message += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) message += "; and " + std::to_string(problems.size() - 8) + " more";
    throw std::invalid_argument(message);
  }
  for (auto& [key, t] : mine) ops::copy_(t, state.at(key));  // state() shares m_ and v_'s storage
  steps_ = steps;
}

}  // namespace glance::nn
