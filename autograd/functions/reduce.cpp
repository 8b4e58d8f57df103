// Reductions. The backward of a reduction spreads the output gradient back over the reduced axes:
// first restore them as size-1 axes (keepdim shape), then broadcast to the input's shape.
#include <algorithm>

#include "autograd/functions.h"

namespace glance {

using autograd::record;

namespace {

// g has the reduction's output shape; returns it reshaped with the reduced axes kept as size 1.
Tensor with_kept_axes(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& axes_in) {
  std::vector<int64_t> axes = normalize_axes(axes_in, static_cast<int64_t>(in_shape.size()), "reduce backward");
  Shape kept = in_shape;
  for (int64_t a : axes) kept[a] = 1;
  return ops::reshape(g, kept);
}

int64_t count_over(const Shape& shape, const std::vector<int64_t>& axes_in) {
  int64_t n = 1;
  for (int64_t a : normalize_axes(axes_in, static_cast<int64_t>(shape.size()), "reduce")) n *= shape[a];
  return n;
}

// max and min: the gradient goes to the elements equal to the extreme, shared evenly between ties.
Tensor extreme(bool is_max, const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Tensor out = is_max ? ops::max(x, axes, keepdim) : ops::min(x, axes, keepdim);
  record(is_max ? "max" : "min", {x}, out, [x, axes, y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    Tensor hit = ops::to_dtype(ops::binary(BinaryOp::Eq, x, with_kept_axes(y, x.shape(), axes)), x.dtype());
    Tensor ties = ops::sum(hit, axes, true);
    return {hit * with_kept_axes(g, x.shape(), axes) / ties};
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Tensor out = ops::sum(x, axes, keepdim);
  record("sum", {x}, out, [shape = x.shape(), axes](const Tensor& g) -> std::vector<Tensor> {
    return {ops::contiguous(ops::expand(with_kept_axes(g, shape, axes), shape))};
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Tensor out = ops::mean(x, axes, keepdim);
  record("mean", {x}, out, [shape = x.shape(), axes](const Tensor& g) -> std::vector<Tensor> {
    double n = static_cast<double>(count_over(shape, axes));
    return {ops::contiguous(ops::expand(with_kept_axes(g, shape, axes) / n, shape))};
  });
  return out;
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return extreme(true, x, axes, keepdim); }
Tensor min(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return extreme(false, x, axes, keepdim); }

Tensor var(const Tensor& x, const std::vector<int64_t>& axes, int64_t correction, bool keepdim) {
  Tensor out = ops::var(x, axes, correction, keepdim);
  // var = sum((x - mean)^2) / (n - correction)  =>  dvar/dx = 2 (x - mean) / (n - correction)
  record("var", {x}, out, [x, axes, correction](const Tensor& g) -> std::vector<Tensor> {
    double denom = static_cast<double>(count_over(x.shape(), axes) - correction);
    Tensor centered = x - ops::mean(x, axes, true);
    return {centered * with_kept_axes(g, x.shape(), axes) * (2.0 / denom)};
  });
  return out;
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Tensor out = ops::logsumexp(x, axes, keepdim);
  // d/dx log(sum(exp(x))) = exp(x - logsumexp(x)): a softmax over the reduced axes.
  record("logsumexp", {x}, out, [x, axes, y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    Tensor weights = ops::unary(UnaryOp::Exp, x - with_kept_axes(y, x.shape(), axes));
    return {weights * with_kept_axes(g, x.shape(), axes)};
  });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  Tensor out = ops::sum_to(x, shape);
  if (out.same(x)) return x;
  record("sum_to", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::contiguous(ops::expand(g, sx))};
  });
  return out;
}

}  // namespace glance
