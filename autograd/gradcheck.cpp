#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

namespace glance::autograd {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != DType::Float64 || !inputs[i].is_leaf() || !inputs[i].is_contiguous()) {
      throw std::invalid_argument("gradcheck: input " + std::to_string(i) +
                                  " must be a contiguous float64 leaf (got " + dtype_name(inputs[i].dtype()) + " " +
                                  shape_str(inputs[i].shape()) + ")");
    }
  }
  Generator gen(options.seed);
  Tensor probe = f(inputs);
  Tensor weights = ops::uniform(probe.shape(), -1.0, 1.0, DType::Float64, &gen);
  auto loss_of = [&](const std::vector<Tensor>& xs) { return sum(f(xs) * weights); };

  // Analytic gradients.
  for (const Tensor& x : inputs) const_cast<Tensor&>(x).zero_grad();
  Tensor loss = loss_of(inputs);
  if (!loss.requires_grad()) {
    GradcheckResult r;
    r.ok = false;
    r.message = "gradcheck: the output does not depend on any input that requires grad";
    return r;
  }
  loss.backward();

  // Numeric gradients, one element at a time, without recording.
  NoGradGuard no_grad;
  GradcheckResult result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    Tensor analytic = x.grad().defined() ? ops::contiguous(x.grad()) : ops::zeros_like(x);
    const double* ga = analytic.data<double>();
    double* values = x.data<double>();
    for (int64_t k = 0; k < x.numel(); ++k) {
      double saved = values[k];
      values[k] = saved + options.eps;
      double plus = loss_of(inputs).item();
      values[k] = saved - options.eps;
      double minus = loss_of(inputs).item();
      values[k] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      double err = std::abs(ga[k] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= options.atol + options.rtol * std::abs(numeric)) && result.ok) {
        std::ostringstream msg;
        msg << "gradcheck: input " << i << " " << shape_str(x.shape()) << ", element " << k << ": analytic "
            << ga[k] << " vs numeric " << numeric << " (error " << err << ")";
        result.ok = false;
        result.message = msg.str();
      }
    }
  }
  return result;
}

}  // namespace glance::autograd
