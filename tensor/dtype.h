// DType: the element types a Tensor can hold, and how to dispatch a template on them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace glance {

enum class DType : uint8_t {
  Float32,  // the default for activations and parameters
  Float64,  // CPU references and gradient checks
  Int32,    // lengths, cu_seqlens
  Int64,    // indices, labels
  UInt8,    // pixels
  Bool,     // masks (stored as one byte per element)
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "int64", ... as NumPy and PyTorch spell them
bool is_floating(DType dtype);
bool is_integral(DType dtype);  // the integer types and Bool

// The C++ type behind a DType, and back.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };

// GLANCE_DISPATCH(dtype, T, body): runs `body` with `T` bound to the C++ type of `dtype`.
//   GLANCE_DISPATCH(x.dtype(), T, { fill_kernel<T>(x); });
#define GLANCE_DISPATCH(dtype, T, ...)                             \
  switch (dtype) {                                                 \
    case ::glance::DType::Float32: { using T = float; __VA_ARGS__; break; }   \
    case ::glance::DType::Float64: { using T = double; __VA_ARGS__; break; }  \
    case ::glance::DType::Int32: { using T = int32_t; __VA_ARGS__; break; }   \
    case ::glance::DType::Int64: { using T = int64_t; __VA_ARGS__; break; }   \
    case ::glance::DType::UInt8: { using T = uint8_t; __VA_ARGS__; break; }   \
    case ::glance::DType::Bool: { using T = bool; __VA_ARGS__; break; }       \
  }

// Only the floating types (for exp, log, softmax, ...).
#define GLANCE_DISPATCH_FLOAT(dtype, opname, T, ...)                          \
  switch (dtype) {                                                            \
    case ::glance::DType::Float32: { using T = float; __VA_ARGS__; break; }   \
    case ::glance::DType::Float64: { using T = double; __VA_ARGS__; break; }  \
    default:                                                                  \
      throw std::invalid_argument(std::string(opname) + ": expected a floating dtype, got " + \
                                  ::glance::dtype_name(dtype));               \
  }

}  // namespace glance
