// Reductions over any set of axes, with or without keepdim.
#include <algorithm>
#include <limits>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::ops {

namespace {

Shape keepdim_shape(const Shape& shape, const std::vector<int64_t>& axes) {
  Shape out = shape;
  for (int64_t a : axes) out[a] = 1;
  return out;
}

// Removes the (sorted) reduced axes from a keepdim-shaped result.
Tensor drop_axes(const Tensor& t, const std::vector<int64_t>& axes) {
  Shape shape;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (!std::binary_search(axes.begin(), axes.end(), i)) shape.push_back(t.shape()[i]);
  }
  return view(t, shape);
}

Tensor reduce(ReduceOp op, const char* name, const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  if (x.dtype() == DType::Bool && op == ReduceOp::Sum) {
    throw std::invalid_argument(std::string(name) + ": convert bool to an integer dtype first");
  }
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), name);
  if (op != ReduceOp::Sum) {
    for (int64_t a : axes) {
      if (x.shape()[a] == 0) {
        throw std::invalid_argument(std::string(name) + ": cannot reduce over empty axis " + std::to_string(a) +
                                    " of shape " + shape_str(x.shape()));
      }
    }
  }
  Tensor out = Tensor::empty(keepdim_shape(x.shape(), axes), x.dtype(), x.device());
  backend_for(x.device()).reduce(op, out, x, axes);
  return keepdim ? out : drop_axes(out, axes);
}

int64_t count_over(const Tensor& x, const std::vector<int64_t>& axes_in, const char* name) {
  int64_t n = 1;
  for (int64_t a : normalize_axes(axes_in, x.dim(), name)) n *= x.shape()[a];
  return n;
}

Tensor arg_reduce(bool is_max, const Tensor& x, int64_t axis, bool keepdim) {
  const char* name = is_max ? "argmax" : "argmin";
  int64_t a = normalize_axis(axis, x.dim(), name);
  if (x.shape()[a] == 0) throw std::invalid_argument(std::string(name) + ": axis " + std::to_string(a) + " is empty");
  Shape shape = x.shape();
  shape[a] = 1;
  Tensor out = Tensor::empty(shape, DType::Int64, x.device());
  backend_for(x.device()).arg_reduce(is_max, out, x, a);
  return keepdim ? out : squeeze(out, a);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return reduce(ReduceOp::Sum, "sum", x, axes, keepdim);
}
Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return reduce(ReduceOp::Max, "max", x, axes, keepdim);
}
Tensor min(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return reduce(ReduceOp::Min, "min", x, axes, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  if (!is_floating(x.dtype())) {
    throw std::invalid_argument(std::string("mean: expected a floating dtype, got ") + dtype_name(x.dtype()));
  }
  int64_t n = count_over(x, axes, "mean");
  return binary(BinaryOp::Div, sum(x, axes, keepdim), static_cast<double>(n));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& axes, int64_t correction, bool keepdim) {
  if (!is_floating(x.dtype())) {
    throw std::invalid_argument(std::string("var: expected a floating dtype, got ") + dtype_name(x.dtype()));
  }
  int64_t n = count_over(x, axes, "var");
  Tensor centered = binary(BinaryOp::Sub, x, mean(x, axes, true));
  Tensor squares = sum(binary(BinaryOp::Mul, centered, centered), axes, keepdim);
  double denom = static_cast<double>(n - correction);
  if (denom <= 0) return binary(BinaryOp::Mul, squares, std::numeric_limits<double>::quiet_NaN());
  return binary(BinaryOp::Div, squares, denom);
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) { return arg_reduce(true, x, axis, keepdim); }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) { return arg_reduce(false, x, axis, keepdim); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  if (lead < 0) {
    throw std::invalid_argument("sum_to: cannot sum " + shape_str(x.shape()) + " to more dims " + shape_str(shape));
  }
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < lead) {
      axes.push_back(i);  // an axis broadcasting added in front
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      axes.push_back(i);  // an axis broadcasting stretched from 1
    } else if (shape[i - lead] != x.shape()[i]) {
      throw std::invalid_argument("sum_to: " + shape_str(x.shape()) + " is not a broadcast of " + shape_str(shape));
    }
  }
  if (axes.empty()) return reshape(x, shape);
  return reshape(sum(x, axes, true), shape);
}

}  // namespace glance::ops
