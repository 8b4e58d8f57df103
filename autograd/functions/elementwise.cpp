// Elementwise functions, each forward next to its backward rule.
//
// Broadcasting: when `a` was stretched to the output's shape, its gradient is summed back down to
// a's shape (sum_to). Rules that need the output capture `out.detach()`, never `out` (no cycles).
#include <cmath>
#include <numbers>

#include "autograd/functions.h"

namespace glance {

using autograd::record;

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Add, a, b);
  record("add", {a, b}, out, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g, sa), ops::sum_to(g, sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Sub, a, b);
  record("sub", {a, b}, out, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g, sa), ops::sum_to(ops::unary(UnaryOp::Neg, g), sb)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Mul, a, b);
  // d(a*b)/da = b, d(a*b)/db = a
  record("mul", {a, b}, out, [a, b](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g * b, a.shape()), ops::sum_to(g * a, b.shape())};
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Div, a, b);
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
  record("div", {a, b}, out, [a, b](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g / b, a.shape()), ops::sum_to(-(g * a) / (b * b), b.shape())};
  });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Pow, a, b);
  // d(a^b)/da = b * a^(b-1), d(a^b)/db = a^b * log(a)
  record("pow", {a, b}, out, [a, b, y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga = g * b * ops::binary(BinaryOp::Pow, a, b - 1.0);
    Tensor gb = b.requires_grad() ? g * y * log(a) : Tensor();
    return {ops::sum_to(ga, a.shape()), gb.defined() ? ops::sum_to(gb, b.shape()) : gb};
  });
  return out;
}

namespace {
// Gradient mask for maximum/minimum: 1 where `a` won, 0 where it lost, 1/2 on ties.
Tensor winner_share(const Tensor& a, const Tensor& b, BinaryOp strictly_better) {
  Tensor win = ops::to_dtype(ops::binary(strictly_better, a, b), a.dtype());
  Tensor tie = ops::to_dtype(ops::binary(BinaryOp::Eq, a, b), a.dtype());
  return win + tie * 0.5;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Maximum, a, b);
  record("maximum", {a, b}, out, [a, b](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g * winner_share(a, b, BinaryOp::Gt), a.shape()),
            ops::sum_to(g * winner_share(b, a, BinaryOp::Gt), b.shape())};
  });
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(BinaryOp::Minimum, a, b);
  record("minimum", {a, b}, out, [a, b](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(g * winner_share(a, b, BinaryOp::Lt), a.shape()),
            ops::sum_to(g * winner_share(b, a, BinaryOp::Lt), b.shape())};
  });
  return out;
}

Tensor add(const Tensor& a, double b) {
  Tensor out = ops::binary(BinaryOp::Add, a, b);
  record("add_scalar", {a}, out, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = ops::binary(BinaryOp::Mul, a, b);
  record("mul_scalar", {a}, out, [b](const Tensor& g) -> std::vector<Tensor> { return {g * b}; });
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  Tensor out = ops::binary(BinaryOp::Pow, a, exponent);
  // d(a^p)/da = p * a^(p-1)
  record("pow_scalar", {a}, out, [a, exponent](const Tensor& g) -> std::vector<Tensor> {
    return {g * ops::binary(BinaryOp::Pow, a, exponent - 1.0) * exponent};
  });
  return out;
}

// ---- unary functions: y = f(x), dx = g * f'(x) ----

Tensor neg(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Neg, x);
  record("neg", {x}, out, [](const Tensor& g) -> std::vector<Tensor> { return {ops::unary(UnaryOp::Neg, g)}; });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Exp, x);
  record("exp", {x}, out, [y = out.detach()](const Tensor& g) -> std::vector<Tensor> { return {g * y}; });  // e^x
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Log, x);
  record("log", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> { return {g / x}; });  // 1/x
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Sqrt, x);
  // 1 / (2 sqrt(x))
  record("sqrt", {x}, out, [y = out.detach()](const Tensor& g) -> std::vector<Tensor> { return {g / (y * 2.0)}; });
  return out;
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Rsqrt, x);
  // d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
  record("rsqrt", {x}, out, [y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    return {g * y * y * y * -0.5};
  });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Abs, x);
  record("abs", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> { return {g * ops::unary(UnaryOp::Sign, x)}; });
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Tanh, x);
  record("tanh", {x}, out, [y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    return {g * (1.0 - y * y)};  // 1 - tanh^2
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Sigmoid, x);
  record("sigmoid", {x}, out, [y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    return {g * y * (1.0 - y)};  // s (1 - s)
  });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Relu, x);
  record("relu", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> {
    return {g * ops::to_dtype(ops::binary(BinaryOp::Gt, x, 0.0), x.dtype())};  // 1 where x > 0
  });
  return out;
}

// Kernels: UnaryOp::GeluErf and BinaryOp::GeluErfGrad, on the CPU in tensor/cpu/elementwise.cpp, on CUDA in
// cuda/unary.cu and cuda/binary.cu (Backend::unary / binary; the fused bias + GELU: Backend::bias_gelu).
Tensor gelu(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::GeluErf, x);
  // y = x Phi(x)  =>  y' = Phi(x) + x phi(x), with phi(x) = exp(-x^2/2) / sqrt(2 pi)
  record("gelu", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> {
    return {ops::binary(BinaryOp::GeluErfGrad, g, x)};  // one fused pass (tensor/cpu/elementwise.cpp)
  });
  return out;
}

Tensor gelu_tanh(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::GeluTanh, x);
  // y = x/2 (1 + tanh(u)), u = c (x + 0.044715 x^3), c = sqrt(2/pi)
  // y' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)
  record("gelu_tanh", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> {
    const double c = std::sqrt(2.0 / std::numbers::pi);
    Tensor t = ops::unary(UnaryOp::Tanh, (x + x * x * x * 0.044715) * c);
    Tensor du = (x * x * (3.0 * 0.044715) + 1.0) * c;
    return {g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * du)};
  });
  return out;
}

Tensor sin(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Sin, x);
  record("sin", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> { return {g * ops::unary(UnaryOp::Cos, x)}; });
  return out;
}

Tensor cos(const Tensor& x) {
  Tensor out = ops::unary(UnaryOp::Cos, x);
  record("cos", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> {
    return {-(g * ops::unary(UnaryOp::Sin, x))};
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = ops::where(cond, a, b);
  record("where", {a, b}, out, [cond, sa = a.shape(), sb = b.shape()](const Tensor& g) -> std::vector<Tensor> {
    Tensor zero = ops::zeros_like(g);
    return {ops::sum_to(ops::where(cond, g, zero), sa), ops::sum_to(ops::where(cond, zero, g), sb)};
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = ops::masked_fill(x, mask, value);
  record("masked_fill", {x}, out, [mask, sx = x.shape()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum_to(ops::masked_fill(g, mask, 0.0), sx)};  // filled places get no gradient
  });
  return out;
}

Tensor eq(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::Ge, a, b); }

// ---- operators ----
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return mul(pow(b, -1.0), a); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }

}  // namespace glance
