// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, exactly as torch.optim.AdamW:
//   p = p * (1 - lr * wd)
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
#pragma once
#include "nn/optim/optimizer.h"

namespace glance::nn {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
  void step() override;
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;

 private:
  AdamWOptions options_;
  std::vector<std::vector<Tensor>> m_, v_;  // first and second moments, per group, per parameter
};

}  // namespace glance::nn
