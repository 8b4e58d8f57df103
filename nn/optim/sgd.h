// SGD with momentum, Nesterov momentum and (L2) weight decay, exactly as torch.optim.SGD:
//   d = g + wd * p
//   buf = momentum * buf + (1 - dampening) * d      (buf = d on the first step)
//   d = nesterov ? d + momentum * buf : buf         (when momentum > 0)
//   p = p - lr * d
#pragma once
#include "nn/optim/optimizer.h"

namespace glance::nn {

struct SGDOptions {
  double momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});
  void step() override;
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;

 private:
  SGDOptions options_;
  std::vector<std::vector<Tensor>> momentum_;  // per group, per parameter (undefined until used)
};

}  // namespace glance::nn
