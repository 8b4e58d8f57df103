#include "nn/dropout.h"

#include <stdexcept>

namespace glance::nn {

namespace {
void check_p(double p, const char* op) {
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument(std::string(op) + ": p must be in [0, 1), got " + std::to_string(p));
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_p(p, "dropout");
  if (!training || p == 0.0) return x;
  Tensor keep = ops::bernoulli(x.shape(), 1.0 - p, x.dtype(), gen);
  return x * ops::binary(BinaryOp::Mul, ops::to_device(keep, x.device()), 1.0 / (1.0 - p));
}

Tensor drop_path(const Tensor& x, double p, bool training, const Tensor& sample_of_row, int64_t samples, Generator* gen) {
  check_p(p, "drop_path");
  if (!training || p == 0.0) return x;
  Tensor scale;  // one factor per sample: 0 or 1/(1-p)
  if (!sample_of_row.defined()) {
    Shape shape(x.dim(), 1);
    shape[0] = x.size(0);
    scale = ops::bernoulli(shape, 1.0 - p, x.dtype(), gen);
  } else {
    Tensor per_sample = ops::bernoulli({samples}, 1.0 - p, x.dtype(), gen);
    scale = ops::unsqueeze(ops::index_select(per_sample, 0, sample_of_row), 1);  // [rows, 1]
  }
  scale = ops::binary(BinaryOp::Mul, ops::to_device(scale, x.device()), 1.0 / (1.0 - p));
  return x * scale;
}

Dropout::Dropout(double prob) : p(prob) { check_p(p, "Dropout"); }
DropPath::DropPath(double prob) : p(prob) { check_p(p, "DropPath"); }

Tensor DropPath::forward(const Tensor& x, const TokenLayout& layout) const {
  if (!is_training() || p == 0.0) return x;
  return drop_path(x, p, true, layout.clip_of_token(), layout.batch_size());
}

}  // namespace glance::nn
