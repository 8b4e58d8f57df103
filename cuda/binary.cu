// CudaBackend, part 4: binary ops, out = a op b, one functor per (op, dtype) pair.
//
// The CPU's rules (tensor/cpu/elementwise.cpp), one by one:
//   - arithmetic returns the inputs' dtype, comparisons return bool;
//   - the scalar of binary(op, a, scalar) is converted to a's dtype first;
//   - integer division truncates toward zero; x / 0 is 0 for integers (C++ leaves it undefined); INT_MIN / -1
//     wraps; integer pow goes through double and truncates (exactly: see int_pow);
//   - maximum / minimum propagate NaN (if either value is NaN the result is NaN);
//   - bool supports comparisons only; gelu_erf_grad floats only.
// A scalar b (b undefined) becomes a one-input functor that holds the converted scalar, so `x * 0.5` reads one
// operand, not two.
#include <type_traits>

#include "cuda/elementwise.cuh"
#include "tensor/ops.h"

namespace glance::cuda {

namespace {

constexpr bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

template <BinaryOp OP, typename T>
constexpr bool binary_supported() {
  if constexpr (is_comparison(OP)) return true;
  if constexpr (std::is_same_v<T, bool>) return false;
  if constexpr (OP == BinaryOp::GeluErfGrad) return std::is_floating_point_v<T>;
  return true;
}

// Integer a / b: truncation toward zero; b == 0 gives 0; INT_MIN / -1 wraps (negation in unsigned arithmetic).
template <typename T>
__device__ __forceinline__ T int_div(T a, T b) {
  if (b == 0) return T(0);
  if constexpr (std::is_signed_v<T>) {
    if (b == T(-1)) return T(0 - static_cast<std::make_unsigned_t<T>>(a));
  }
  return T(a / b);
}

// Integer a ** b. The CPU computes T(std::pow(double(a), double(b))), and glibc's pow is exact whenever the
// true result is a double; CUDA's pow is only promised to within 2 ulp, which the truncation to an integer
// could turn into an off-by-one (63.999... -> 63). So the power is taken by repeated squaring in double: exact
// while the result fits in 53 bits (beyond that the conversion back overflows the integer type, undefined in
// C++ on either device). A negative exponent gives 1 / a^|b|, truncated: 0 unless |a| is 1.
template <typename T>
__device__ __forceinline__ T int_pow(T a, T b) {
  double base = double(a), r = 1.0;
  bool negative = false;
  uint64_t e = static_cast<uint64_t>(b);
  if constexpr (std::is_signed_v<T>) {
    if (b < 0) {
      negative = true;
      e = 0 - static_cast<uint64_t>(static_cast<int64_t>(b));
    }
  }
  while (e != 0) {
    if (e & 1) r *= base;
    e >>= 1;
    if (e != 0) base *= base;
  }
  return T(negative ? 1.0 / r : r);
}

template <BinaryOp OP, typename T>
struct BinaryFn {
  using Out = std::conditional_t<is_comparison(OP), bool, T>;
  __device__ Out operator()(T a, T b) const {
    if constexpr (OP == BinaryOp::Eq) return a == b;
    if constexpr (OP == BinaryOp::Ne) return a != b;
    if constexpr (OP == BinaryOp::Lt) return a < b;
    if constexpr (OP == BinaryOp::Le) return a <= b;
    if constexpr (OP == BinaryOp::Gt) return a > b;
    if constexpr (OP == BinaryOp::Ge) return a >= b;
    if constexpr (!std::is_same_v<T, bool>) {
      if constexpr (OP == BinaryOp::Add) return T(a + b);
      if constexpr (OP == BinaryOp::Sub) return T(a - b);
      if constexpr (OP == BinaryOp::Mul) return T(a * b);
      if constexpr (OP == BinaryOp::Div) {
        if constexpr (std::is_floating_point_v<T>) {
          return T(a / b);
        } else {
          return int_div<T>(a, b);
        }
      }
      if constexpr (OP == BinaryOp::Pow) {
        if constexpr (std::is_floating_point_v<T>) {
          return dpow(a, b);
        } else {
          return int_pow<T>(a, b);
        }
      }
      if constexpr (OP == BinaryOp::Maximum) return (a > b || is_nan(a)) ? a : b;
      if constexpr (OP == BinaryOp::Minimum) return (a < b || is_nan(a)) ? a : b;
      if constexpr (OP == BinaryOp::GeluErfGrad && std::is_floating_point_v<T>) {
        // g * d/dx [x Phi(x)] = g * (Phi(x) + x phi(x)), Phi(x) = (1 + erf(x/sqrt 2))/2, phi = exp(-x^2/2)/sqrt(2 pi)
        const T g = a, x = b;
        const T cdf = T(0.5) * (T(1) + derf(x * T(0.7071067811865476)));
        return g * (cdf + x * T(0.3989422804014327) * dexp(T(-0.5) * x * x));
      }
    }
    return Out();  // not reached: binary_supported() filters the pairs
  }
};

// a op scalar: the scalar already converted to T on the host.
template <BinaryOp OP, typename T>
struct BinaryScalarFn {
  T b;
  __device__ typename BinaryFn<OP, T>::Out operator()(T a) const { return BinaryFn<OP, T>{}(a, b); }
};

template <BinaryOp OP, typename T>
void run_binary(const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) {
  if constexpr (binary_supported<OP, T>()) {
    using R = typename BinaryFn<OP, T>::Out;
    out.check_dtype(dtype_of<R>::value, "cuda binary (out)");
    if (b.defined()) {
      launch_map<R, T, T>(ops::op_name(OP), BinaryFn<OP, T>{}, out, {a, b});
    } else {
      launch_map<R, T>(ops::op_name(OP), BinaryScalarFn<OP, T>{convert<T>(scalar_b)}, out, {a});
    }
  } else {
    throw std::invalid_argument(std::string("cuda binary: ") + ops::op_name(OP) + " is not supported for dtype " +
                                dtype_name(dtype_of<T>::value));
  }
}

}  // namespace

void CudaBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) {
  if (b.defined()) b.check_dtype(a.dtype(), "cuda binary (b)");
  GLANCE_DISPATCH(a.dtype(), T, {
    switch (op) {
      case BinaryOp::Add: run_binary<BinaryOp::Add, T>(out, a, b, scalar_b); break;
      case BinaryOp::Sub: run_binary<BinaryOp::Sub, T>(out, a, b, scalar_b); break;
      case BinaryOp::Mul: run_binary<BinaryOp::Mul, T>(out, a, b, scalar_b); break;
      case BinaryOp::Div: run_binary<BinaryOp::Div, T>(out, a, b, scalar_b); break;
      case BinaryOp::Pow: run_binary<BinaryOp::Pow, T>(out, a, b, scalar_b); break;
      case BinaryOp::Maximum: run_binary<BinaryOp::Maximum, T>(out, a, b, scalar_b); break;
      case BinaryOp::Minimum: run_binary<BinaryOp::Minimum, T>(out, a, b, scalar_b); break;
      case BinaryOp::GeluErfGrad: run_binary<BinaryOp::GeluErfGrad, T>(out, a, b, scalar_b); break;
      case BinaryOp::Eq: run_binary<BinaryOp::Eq, T>(out, a, b, scalar_b); break;
      case BinaryOp::Ne: run_binary<BinaryOp::Ne, T>(out, a, b, scalar_b); break;
      case BinaryOp::Lt: run_binary<BinaryOp::Lt, T>(out, a, b, scalar_b); break;
      case BinaryOp::Le: run_binary<BinaryOp::Le, T>(out, a, b, scalar_b); break;
      case BinaryOp::Gt: run_binary<BinaryOp::Gt, T>(out, a, b, scalar_b); break;
      case BinaryOp::Ge: run_binary<BinaryOp::Ge, T>(out, a, b, scalar_b); break;
    }
  });
}

}  // namespace glance::cuda
