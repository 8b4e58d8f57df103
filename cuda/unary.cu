// CudaBackend, part 3: unary ops. Each (op, dtype) pair is one functor instantiated at compile time, so the
// kernel for relu on float32 contains a compare and a select and nothing else.
//
// Which dtypes each op supports is the CPU's table (tensor/cpu/elementwise.cpp):
//   bool            logical_not
//   uint8           neg (wraps), abs, relu (identity), sign (0 or 1)
//   int32, int64    neg, abs, sign, relu
//   float, double   all of the above but logical_not, plus exp, log, sqrt, rsqrt, tanh, sin, cos, sigmoid,
//                   gelu_tanh, gelu (erf)
// Float32 uses CUDA's expf/erff/tanhf (libdevice, within 2 ulp); the CPU uses its own polynomial exp and erf
// (tensor/cpu/fast_math.h, within ~1e-7 relative / 5e-7 absolute), so the two agree to float32 precision,
// not bit for bit.
#include <type_traits>

#include "cuda/elementwise.cuh"
#include "tensor/ops.h"

namespace glance::cuda {

namespace {

template <UnaryOp OP, typename T>
constexpr bool unary_supported() {
  if constexpr (std::is_same_v<T, bool>) {
    return OP == UnaryOp::LogicalNot;
  } else if constexpr (!std::is_floating_point_v<T>) {
    return OP == UnaryOp::Neg || OP == UnaryOp::Abs || OP == UnaryOp::Relu || OP == UnaryOp::Sign;
  } else {
    return OP != UnaryOp::LogicalNot;
  }
}

template <UnaryOp OP, typename T>
struct UnaryFn {
  __device__ T operator()(T x) const {
    if constexpr (OP == UnaryOp::LogicalNot) {
      return !x;
    } else if constexpr (std::is_unsigned_v<T>) {  // uint8: no negative values
      if constexpr (OP == UnaryOp::Neg) return T(-x);  // wraps around, as in C++
      if constexpr (OP == UnaryOp::Abs || OP == UnaryOp::Relu) return x;
      if constexpr (OP == UnaryOp::Sign) return T(x > 0);
    } else {
      if constexpr (OP == UnaryOp::Neg) return T(-x);
      if constexpr (OP == UnaryOp::Abs) return x < T(0) ? T(-x) : x;
      if constexpr (OP == UnaryOp::Sign) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);  // NaN stays NaN
      if constexpr (OP == UnaryOp::Relu) return x < T(0) ? T(0) : x;                       // NaN passes through
      if constexpr (std::is_floating_point_v<T>) {
        if constexpr (OP == UnaryOp::Exp) return dexp(x);
        if constexpr (OP == UnaryOp::Log) return dlog(x);
        if constexpr (OP == UnaryOp::Sqrt) return dsqrt(x);
        if constexpr (OP == UnaryOp::Rsqrt) return T(1) / dsqrt(x);  // not rsqrtf: that one is approximate
        if constexpr (OP == UnaryOp::Tanh) return dtanh(x);
        if constexpr (OP == UnaryOp::Sin) return dsin(x);
        if constexpr (OP == UnaryOp::Cos) return dcos(x);
        if constexpr (OP == UnaryOp::Sigmoid) {
          // e = exp(-|x|) never overflows: 1/(1+e) for x >= 0, e/(1+e) = exp(x)/(1+exp(x)) for x < 0.
          const T e = dexp(-dabs(x));
          return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        }
        if constexpr (OP == UnaryOp::GeluTanh) {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
          const T k = T(0.7978845608028654);
          return T(0.5) * x * (T(1) + dtanh(k * (x + T(0.044715) * x * x * x)));
        }
        if constexpr (OP == UnaryOp::GeluErf) {  // 0.5 x (1 + erf(x / sqrt(2))): the exact GELU
          return T(0.5) * x * (T(1) + derf(x * T(0.7071067811865476)));
        }
      }
    }
    return T();  // not reached: unary_supported() filters the pairs
  }
};

template <UnaryOp OP, typename T>
void run_unary(const Tensor& out, const Tensor& in) {
  if constexpr (unary_supported<OP, T>()) {
    launch_map<T, T>(ops::op_name(OP), UnaryFn<OP, T>{}, out, {in});
  } else {
    throw std::invalid_argument(std::string("cuda unary: ") + ops::op_name(OP) + " is not supported for dtype " +
                                dtype_name(dtype_of<T>::value));
  }
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& out, const Tensor& in) {
  out.check_dtype(in.dtype(), "cuda unary (out)");
  GLANCE_DISPATCH(in.dtype(), T, {
    switch (op) {
      case UnaryOp::Neg: run_unary<UnaryOp::Neg, T>(out, in); break;
      case UnaryOp::Exp: run_unary<UnaryOp::Exp, T>(out, in); break;
      case UnaryOp::Log: run_unary<UnaryOp::Log, T>(out, in); break;
      case UnaryOp::Sqrt: run_unary<UnaryOp::Sqrt, T>(out, in); break;
      case UnaryOp::Rsqrt: run_unary<UnaryOp::Rsqrt, T>(out, in); break;
      case UnaryOp::Abs: run_unary<UnaryOp::Abs, T>(out, in); break;
      case UnaryOp::Tanh: run_unary<UnaryOp::Tanh, T>(out, in); break;
      case UnaryOp::Sigmoid: run_unary<UnaryOp::Sigmoid, T>(out, in); break;
      case UnaryOp::Relu: run_unary<UnaryOp::Relu, T>(out, in); break;
      case UnaryOp::GeluTanh: run_unary<UnaryOp::GeluTanh, T>(out, in); break;
      case UnaryOp::GeluErf: run_unary<UnaryOp::GeluErf, T>(out, in); break;
      case UnaryOp::Sin: run_unary<UnaryOp::Sin, T>(out, in); break;
      case UnaryOp::Cos: run_unary<UnaryOp::Cos, T>(out, in); break;
      case UnaryOp::Sign: run_unary<UnaryOp::Sign, T>(out, in); break;
      case UnaryOp::LogicalNot: run_unary<UnaryOp::LogicalNot, T>(out, in); break;
    }
  });
}

}  // namespace glance::cuda
