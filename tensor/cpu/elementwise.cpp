// CpuBackend, part 2: elementwise kernels (fill, copy with dtype conversion, unary, binary, where).
//
// Every kernel is "apply a small function to each position" and is built from the same two pieces:
//   - for_each_row (strided_loop.h) walks the same-shaped operands as rows, in parallel when large;
//   - map_row below applies the function along one row: a unit-stride loop that GCC vectorises when the
//     function allows it, a variant for a stride-0 (broadcast) input, and a plain strided loop otherwise.
//
// Dtype rules (the op layer, tensor/ops_elementwise.cpp, has already checked what is allowed):
//   - conversions are C++ static_cast, except that anything -> bool is `value != 0` (NaN -> true);
//   - the scalar of binary(op, a, scalar) is converted to a's dtype first (as ops.h documents);
//   - integer division truncates toward zero as in C++; x / 0 is defined here as 0 (C++ leaves it undefined
//     and x86 would crash); integer pow goes through double and truncates;
//   - bool operands support comparisons only (the op layer refuses bool arithmetic).
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/fast_math.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"

namespace glance {

using cpu::for_each_row;

namespace {

template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

template <typename T>
inline bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(x);
  } else {
    return false;
  }
}

// ---- the row kernels ----

// out[i] = fn(in[i]) along one row. `fn` is inlined, so for simple functions the unit-stride loop
// compiles to SIMD instructions.
template <typename O, typename I, typename Fn>
void map_row(O* out, const I* in, int64_t n, int64_t so, int64_t si, Fn fn) {
  if (so == 1 && si == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = fn(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i * so] = fn(in[i * si]);
  }
}

// out[i] = fn(a[i], b[i]) along one row, with the broadcast case (b of stride 0: a bias row, a scalar)
// split out so it vectorises too.
template <typename O, typename A, typename B, typename Fn>
void map_row(O* out, const A* a, const B* b, int64_t n, int64_t so, int64_t sa, int64_t sb, Fn fn) {
  if (so == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = fn(a[i], b[i]);
  } else if (so == 1 && sa == 1 && sb == 0) {
    const B bv = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = fn(a[i], bv);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i * so] = fn(a[i * sa], b[i * sb]);
  }
}

// out = fn(in) over whole tensors (out: type O, in: type I; same shape).
template <typename O, typename I, typename Fn>
void map_unary(const Tensor& out, const Tensor& in, Fn fn) {
  for_each_row<2>({out, in}, [&](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& s) {
    map_row(reinterpret_cast<O*>(p[0]), reinterpret_cast<const I*>(p[1]), n, s[0], s[1], fn);
  });
}

// out = fn(a, b) over whole tensors. An undefined `b` means the scalar *b_scalar: it becomes a third operand
// whose strides are all 0, so the scalar case runs through the same (broadcast) row kernel.
template <typename O, typename A, typename B, typename Fn>
void map_binary(const Tensor& out, const Tensor& a, const Tensor& b, const B* b_scalar, Fn fn) {
  const bool scalar = !b.defined();
  auto layout = cpu::coalesce<3>(
      out.shape(), {out.strides(), a.strides(), scalar ? Strides(out.dim(), 0) : b.strides()});
  std::array<char*, 3> base{static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data()),
                            scalar ? const_cast<char*>(reinterpret_cast<const char*>(b_scalar))
                                   : static_cast<char*>(b.raw_data())};
  std::array<int64_t, 3> itemsize{sizeof(O), sizeof(A), sizeof(B)};
  for_each_row<3>(layout, base, itemsize, [&](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& s) {
    map_row(reinterpret_cast<O*>(p[0]), reinterpret_cast<const A*>(p[1]), reinterpret_cast<const B*>(p[2]), n,
            s[0], s[1], s[2], fn);
  });
}

// ---- unary ops ----

template <typename T>
void unary_typed(UnaryOp op, const Tensor& out, const Tensor& in) {
  auto run = [&](auto fn) { map_unary<T, T>(out, in, fn); };
  if constexpr (std::is_same_v<T, bool>) {
    if (op == UnaryOp::LogicalNot) return run([](bool x) { return !x; });
  } else if constexpr (std::is_unsigned_v<T>) {  // uint8: no negative values
    switch (op) {
      case UnaryOp::Neg: return run([](T x) { return T(-x); });  // wraps around, as in C++
      case UnaryOp::Abs: case UnaryOp::Relu: return run([](T x) { return x; });
      case UnaryOp::Sign: return run([](T x) { return T(x > 0); });
      default: break;
    }
  } else {  // signed integers and floating point
    switch (op) {
      case UnaryOp::Neg: return run([](T x) { return T(-x); });
      case UnaryOp::Abs: return run([](T x) { return x < T(0) ? T(-x) : x; });  // -0.0 stays -0.0 (== 0)
      // Sign is -1, 0 or 1 (NaN stays NaN, as in torch).
      case UnaryOp::Sign: return run([](T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x); });
      // max(x, 0), written so that NaN passes through (NaN < 0 is false).
      case UnaryOp::Relu: return run([](T x) { return x < T(0) ? T(0) : x; });
      default: break;
    }
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case UnaryOp::Exp:
        if constexpr (std::is_same_v<T, float>) return run([](T x) { return cpu::fast_exp(x); });
        return run([](T x) { return std::exp(x); });
      case UnaryOp::Log: return run([](T x) { return std::log(x); });
      case UnaryOp::Sqrt: return run([](T x) { return std::sqrt(x); });
      case UnaryOp::Rsqrt: return run([](T x) { return T(1) / std::sqrt(x); });
      case UnaryOp::Tanh: return run([](T x) { return std::tanh(x); });
      case UnaryOp::Sin: return run([](T x) { return std::sin(x); });
      case UnaryOp::Cos: return run([](T x) { return std::cos(x); });
      case UnaryOp::Sigmoid:
        // e = exp(-|x|) never overflows: 1/(1+e) for x >= 0, and e/(1+e) = exp(x)/(1+exp(x)) for x < 0.
        return run([](T x) {
          const T e = std::exp(-std::abs(x));
          return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        });
      case UnaryOp::GeluTanh:  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        return run([](T x) {
          const T k = T(0.7978845608028654);  // sqrt(2/pi)
          return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
        });
      case UnaryOp::GeluErf:  // 0.5 x (1 + erf(x / sqrt(2))): the exact GELU
        if constexpr (std::is_same_v<T, float>) {
          return run([](T x) { return T(0.5) * x * (T(1) + cpu::fast_erf(x * T(0.7071067811865476))); });
        }
        return run([](T x) { return T(0.5) * x * (T(1) + std::erf(x * T(0.7071067811865476))); });
      default: break;
    }
  }
  throw std::invalid_argument(std::string("cpu unary: op not supported for dtype ") + dtype_name(dtype_of<T>::value));
}

// ---- binary ops ----

// Integer a / b: truncation toward zero (C++); b == 0 gives 0 rather than a crash; INT_MIN / -1 wraps.
template <typename C>
inline C int_div(C a, C b) {
  if (b == 0) return C(0);
  if constexpr (std::is_signed_v<C>) {
    if (b == C(-1)) return C(0 - static_cast<std::make_unsigned_t<C>>(a));
  }
  return C(a / b);
}

// Calls body(fn) with fn the (inlinable) function of `op` on two values of type T. Arithmetic returns T,
// comparisons return bool. `C` is the type arithmetic is done in: T itself, except bool computes as int.
// Calls body(fn) with fn the (inlinable) function of `op` on two values of type T. Arithmetic returns T,
// comparisons return bool. (uint8 arithmetic happens in int and wraps when converted back, as in C++.)
template <typename T, typename Body>
void with_binary_op(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::Eq: return body([](T a, T b) { return a == b; });
    case BinaryOp::Ne: return body([](T a, T b) { return a != b; });
    case BinaryOp::Lt: return body([](T a, T b) { return a < b; });
    case BinaryOp::Le: return body([](T a, T b) { return a <= b; });
    case BinaryOp::Gt: return body([](T a, T b) { return a > b; });
    case BinaryOp::Ge: return body([](T a, T b) { return a >= b; });
    default: break;
  }
  if constexpr (std::is_same_v<T, bool>) {
    // The op layer refuses arithmetic on bool; compiling those kernels would only cost build time.
    throw std::invalid_argument("cpu binary: arithmetic on bool is not supported");
  } else {
    switch (op) {
      case BinaryOp::Add: return body([](T a, T b) { return T(a + b); });
      case BinaryOp::Sub: return body([](T a, T b) { return T(a - b); });
      case BinaryOp::Mul: return body([](T a, T b) { return T(a * b); });
      case BinaryOp::Div:
        if constexpr (std::is_floating_point_v<T>) {
          return body([](T a, T b) { return T(a / b); });
        } else {
          return body([](T a, T b) { return int_div<T>(a, b); });
        }
      case BinaryOp::Pow:
        if constexpr (std::is_floating_point_v<T>) {
          return body([](T a, T b) { return T(std::pow(a, b)); });
        } else {
          return body([](T a, T b) { return T(std::pow(double(a), double(b))); });
        }
      // NaN propagates like torch: if either value is NaN the result is NaN.
      case BinaryOp::Maximum: return body([](T a, T b) { return (a > b || is_nan(a)) ? a : b; });
      case BinaryOp::Minimum: return body([](T a, T b) { return (a < b || is_nan(a)) ? a : b; });
      // g * d/dx [x Phi(x)] = g * (Phi(x) + x phi(x)), Phi(x) = (1 + erf(x/sqrt 2))/2, phi = exp(-x^2/2)/sqrt(2 pi)
      case BinaryOp::GeluErfGrad:
        if constexpr (std::is_same_v<T, float>) {
          return body([](T g, T x) {
            const T cdf = T(0.5) * (T(1) + cpu::fast_erf(x * T(0.7071067811865476)));
            return g * (cdf + x * T(0.3989422804014327) * cpu::fast_exp(T(-0.5) * x * x));
          });
        } else if constexpr (std::is_floating_point_v<T>) {
          return body([](T g, T x) {
            const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.7071067811865476)));
            return g * (cdf + x * T(0.3989422804014327) * std::exp(T(-0.5) * x * x));
          });
        } else {
          throw std::invalid_argument("cpu binary: gelu_erf_grad needs a floating-point dtype");
        }
      default: break;
    }
  }
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) {
  const T s = convert<T>(scalar_b);  // used only when b is undefined
  with_binary_op<T>(op, [&](auto fn) {
    using R = decltype(fn(T{}, T{}));  // T for arithmetic, bool for comparisons
    out.check_dtype(dtype_of<R>::value, "cpu binary (out)");
    map_binary<R, T, T>(out, a, b, &s, fn);
  });
}

// Copy row with conversion; the same-type unit-stride case is a memcpy.
template <typename O, typename I>
void copy_typed(const Tensor& out, const Tensor& in) {
  for_each_row<2>({out, in}, [](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& s) {
    if (std::is_same_v<O, I> && s[0] == 1 && s[1] == 1) {
      std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(O));
      return;
    }
    map_row(reinterpret_cast<O*>(p[0]), reinterpret_cast<const I*>(p[1]), n, s[0], s[1],
            [](I v) { return convert<O>(v); });
  });
}

}  // namespace

void CpuBackend::fill(const Tensor& out, double value) {
  const op_profile::Scope profile_scope(OpKind::Elementwise);
  GLANCE_DISPATCH(out.dtype(), T, {
    const T v = convert<T>(value);
    for_each_row<1>({out}, [v](const std::array<char*, 1>& p, int64_t n, const std::array<int64_t, 1>& s) {
      T* o = reinterpret_cast<T*>(p[0]);
      if (s[0] == 1) {
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;
      }
    });
  });
}

void CpuBackend::arange(const Tensor& out, double start, double step) {
  const op_profile::Scope profile_scope(OpKind::Elementwise);
  GLANCE_DISPATCH(out.dtype(), T, {
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = convert<T>(std::fma(static_cast<double>(i), step, start));
  });
}

void CpuBackend::copy(const Tensor& out, const Tensor& in) {
  const op_profile::Scope profile_scope(OpKind::Copy);
  GLANCE_DISPATCH(out.dtype(), O, { GLANCE_DISPATCH(in.dtype(), I, { copy_typed<O, I>(out, in); }); });
}

void CpuBackend::unary(UnaryOp op, const Tensor& out, const Tensor& in) {
  const bool gelu = op == UnaryOp::GeluErf || op == UnaryOp::GeluTanh;
  const op_profile::Scope profile_scope(gelu ? OpKind::Gelu : OpKind::Elementwise);
  out.check_dtype(in.dtype(), "cpu unary (out)");
  GLANCE_DISPATCH(in.dtype(), T, { unary_typed<T>(op, out, in); });
}

void CpuBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) {
  const op_profile::Scope profile_scope(op == BinaryOp::GeluErfGrad ? OpKind::Gelu : OpKind::Elementwise);
  if (b.defined()) b.check_dtype(a.dtype(), "cpu binary (b)");
  GLANCE_DISPATCH(a.dtype(), T, { binary_typed<T>(op, out, a, b, scalar_b); });
}

void CpuBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const op_profile::Scope profile_scope(OpKind::Elementwise);
  cond.check_dtype(DType::Bool, "cpu where (condition)");
  GLANCE_DISPATCH(out.dtype(), T, {
    for_each_row<4>({out, cond, a, b}, [](const std::array<char*, 4>& p, int64_t n, const std::array<int64_t, 4>& s) {
      T* o = reinterpret_cast<T*>(p[0]);
      const bool* c = reinterpret_cast<const bool*>(p[1]);
      const T* x = reinterpret_cast<const T*>(p[2]);
      const T* y = reinterpret_cast<const T*>(p[3]);
      if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * s[0]] = c[i * s[1]] ? x[i * s[2]] : y[i * s[3]];
      }
    });
  });
}

}  // namespace glance
