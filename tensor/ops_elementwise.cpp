// Elementwise ops: check dtypes, broadcast, allocate the result, call the backend.
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::ops {

const char* op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::GeluTanh: return "gelu_tanh";
    case UnaryOp::GeluErf: return "gelu";
    case UnaryOp::Sin: return "sin";
    case UnaryOp::Cos: return "cos";
    case UnaryOp::Sign: return "sign";
    case UnaryOp::LogicalNot: return "logical_not";
  }
  return "unary";
}

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Pow: return "pow";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::GeluErfGrad: return "gelu_erf_grad";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
  }
  return "binary";
}

namespace {

bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device()) {
    throw std::invalid_argument(std::string(op) + ": tensors are on different devices (" + a.device().str() +
                                " and " + b.device().str() + ")");
  }
}

void check_unary_dtype(UnaryOp op, DType dtype) {
  bool ok = false;
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Relu:
      ok = dtype != DType::Bool;
      break;
    case UnaryOp::LogicalNot:
      ok = dtype == DType::Bool;
      break;
    default:
      ok = is_floating(dtype);
  }
  if (!ok) throw std::invalid_argument(std::string(op_name(op)) + ": dtype " + dtype_name(dtype) + " is not supported");
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& x) {
  check_unary_dtype(op, x.dtype());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device()).unary(op, out, x);
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op_name(op);
  if (a.dtype() != b.dtype()) {
    throw std::invalid_argument(std::string(name) + ": dtypes differ (" + dtype_name(a.dtype()) + " " +
                                shape_str(a.shape()) + " and " + dtype_name(b.dtype()) + " " + shape_str(b.shape()) +
                                "); convert one with to_dtype");
  }
  if (a.dtype() == DType::Bool && !is_comparison(op)) {
    throw std::invalid_argument(std::string(name) + ": arithmetic on bool tensors is not supported");
  }
  if (op == BinaryOp::GeluErfGrad && !is_floating(a.dtype())) {
    throw std::invalid_argument(std::string(name) + ": dtype " + dtype_name(a.dtype()) + " is not supported");
  }
  check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? DType::Bool : a.dtype(), a.device());
  backend_for(a.device()).binary(op, out, expand(a, shape), expand(b, shape), 0.0);
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, double b) {
  if (a.dtype() == DType::Bool && !is_comparison(op)) {
    throw std::invalid_argument(std::string(op_name(op)) + ": arithmetic on bool tensors is not supported");
  }
  Tensor out = Tensor::empty(a.shape(), is_comparison(op) ? DType::Bool : a.dtype(), a.device());
  backend_for(a.device()).binary(op, out, a, Tensor(), b);
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  cond.check_dtype(DType::Bool, "where (condition)");
  if (a.dtype() != b.dtype()) {
    throw std::invalid_argument(std::string("where: dtypes differ (") + dtype_name(a.dtype()) + " and " +
                                dtype_name(b.dtype()) + ")");
  }
  check_same_device(cond, a, "where");
  check_same_device(a, b, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_for(a.device()).where(out, expand(cond, shape), expand(a, shape), expand(b, shape));
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return where(mask, scalar(value, x.dtype(), x.device()), x);
}

namespace {
// dst = dst op src in place, src converted to dst's dtype and broadcast to dst's shape (never the reverse).
// One kernel; writing into an input is safe for elementwise ops: element i reads only position i.
void binary_in_place(BinaryOp op, const Tensor& dst, const Tensor& src, const char* name) {
  const Tensor operand = src.dtype() == dst.dtype() ? src : to_dtype(src, dst.dtype());
  check_same_device(dst, operand, name);
  if (broadcast_shapes(dst.shape(), operand.shape(), name) != dst.shape()) {
    throw std::invalid_argument(std::string(name) + ": " + shape_str(src.shape()) + " does not broadcast to " +
                                shape_str(dst.shape()));
  }
  backend_for(dst.device()).binary(op, dst, dst, expand(operand, dst.shape()), 0.0);
}
}  // namespace

void add_(const Tensor& dst, const Tensor& src, double alpha) {
  binary_in_place(BinaryOp::Add, dst, alpha == 1.0 ? src : binary(BinaryOp::Mul, src, alpha), "add_");
}

void mul_(const Tensor& dst, const Tensor& src) { binary_in_place(BinaryOp::Mul, dst, src, "mul_"); }

}  // namespace glance::ops
