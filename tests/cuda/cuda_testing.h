// Helpers for the CUDA tests: the skip guard, moving tensors between devices, fixed pseudo-random inputs, the
// same view taken on both devices, and comparisons of a CUDA result with the CPU's.
//
// The pattern of a parity test:
//   GLANCE_REQUIRE_CUDA();
//   Tensor x = random_tensor({3, 5}, DType::Float32, 7);             // on the CPU
//   Tensor expected = ops::unary(UnaryOp::Exp, x);                   // the CPU backend
//   Tensor actual = ops::unary(UnaryOp::Exp, to_gpu(x));             // the CUDA backend, same op layer
//   expect_close(expected, actual, 1e-6, 1e-6, "exp");               // copies actual back, compares
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/device_query.h"
#include "tensor/ops.h"
#include "tensor/random.h"

// Every test that touches the GPU starts with this: where no device is present it is skipped, not failed.
#define GLANCE_REQUIRE_CUDA() \
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device"

namespace glance::cuda_testing {

inline Device gpu() { return Device::cuda(0); }
inline Tensor to_gpu(const Tensor& t) { return ops::to_device(t, gpu()); }
inline Tensor to_cpu(const Tensor& t) { return ops::to_device(t, Device::cpu()); }

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> d = {DType::Float32, DType::Float64, DType::Int32,
                                       DType::Int64,   DType::UInt8,   DType::Bool};
  return d;
}

// Fixed pseudo-random values (CPU): floats uniform in [low, high); integers uniform in [low, high) (uint8
// clamped to >= 0); bool about half true. Drawn in float64 from a Philox generator of its own, then converted.
inline Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double low = -2.0, double high = 2.0) {
  Generator gen(seed);
  if (dtype == DType::Bool) return ops::bernoulli(shape, 0.5, DType::Bool, &gen);
  if (is_floating(dtype)) return ops::uniform(shape, low, high, dtype, &gen);
  if (dtype == DType::UInt8 && low < 0) low = 0;
  Tensor u = ops::uniform(shape, std::floor(low), std::floor(high), DType::Float64, &gen);
  double* p = u.data<double>();
  for (int64_t i = 0; i < u.numel(); ++i) p[i] = std::floor(p[i]);
  return ops::to_dtype(u, dtype);
}

// The ways a test lays out an operand of `shape`. Each returns a view of exactly `shape` over a larger or
// differently ordered base, so that kernels see non-trivial strides.
enum class Layout { Contiguous, Transposed, Sliced, Expanded, Offset };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Sliced: return "sliced";
    case Layout::Expanded: return "expanded";
    case Layout::Offset: return "offset";
  }
  return "?";
}
inline const std::vector<Layout>& all_layouts() {
  static const std::vector<Layout> l = {Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Expanded,
                                        Layout::Offset};
  return l;
}

// A base tensor (CPU) and the recipe to turn it into a view of `shape` with the given layout. Applying the
// recipe to the base on the CPU and to a copy of the base on the GPU gives the same view on both devices.
struct ViewRecipe {
  Tensor base;
  Layout layout;
  Shape shape;
  Tensor apply(const Tensor& b) const {
    const int64_t n = static_cast<int64_t>(shape.size());
    switch (layout) {
      case Layout::Contiguous: return b;
      case Layout::Transposed: return n >= 2 ? ops::transpose(b, -1, -2) : b;
      case Layout::Sliced: return ops::slice(b, n - 1, 0, 2 * shape.back(), 2);  // every other element
      case Layout::Expanded: return ops::expand(b, shape);                        // axis 0 broadcast
      case Layout::Offset: return ops::view(ops::narrow(b, 0, 3, numel_of(shape)), shape);  // starts at element 3
    }
    return b;
  }
};

inline ViewRecipe make_recipe(const Shape& shape, DType dtype, Layout layout, uint64_t seed, double low = -2.0,
                              double high = 2.0) {
  Shape base_shape = shape;
  const size_t n = shape.size();
  switch (layout) {
    case Layout::Contiguous: break;
    case Layout::Transposed:
      if (n >= 2) std::swap(base_shape[n - 1], base_shape[n - 2]);
      break;
    case Layout::Sliced:
      if (n >= 1) base_shape[n - 1] = 2 * shape[n - 1];
      break;
    case Layout::Expanded:
      if (n >= 1) base_shape[0] = 1;
      break;
    case Layout::Offset:  // a flat base 3 elements longer, viewed from element 3 (storage offset, unaligned)
      base_shape = {numel_of(shape) + 3};
      break;
  }
  return ViewRecipe{random_tensor(base_shape, dtype, seed, low, high), layout, shape};
}

// The same view on both devices: {cpu view, gpu view}.
inline std::pair<Tensor, Tensor> make_pair_view(const Shape& shape, DType dtype, Layout layout, uint64_t seed,
                                                double low = -2.0, double high = 2.0) {
  ViewRecipe r = make_recipe(shape, dtype, layout, seed, low, high);
  return {r.apply(r.base), r.apply(to_gpu(r.base))};
}

// Values as double, row-major, from either device.
inline std::vector<double> values(const Tensor& t) {
  Tensor c = to_cpu(ops::contiguous(t));
  std::vector<double> out;
  out.reserve(static_cast<size_t>(c.numel()));
  GLANCE_DISPATCH(c.dtype(), T, {
    for (T v : c.to_vector<T>()) out.push_back(static_cast<double>(v));
  });
  return out;
}

// expected (any device) vs actual (any device): same shape and dtype, and every value within
// atol + rtol * |expected| (NaN matches NaN, inf matches the same inf). Reports the first few mismatches.
inline void expect_close(const Tensor& expected, const Tensor& actual, double rtol, double atol,
                         const std::string& what) {
  ASSERT_EQ(expected.shape(), actual.shape()) << what;
  ASSERT_EQ(expected.dtype(), actual.dtype()) << what;
  const std::vector<double> e = values(expected), a = values(actual);
  int reported = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    bool ok;
    if (std::isnan(e[i]) || std::isnan(a[i])) {
      ok = std::isnan(e[i]) && std::isnan(a[i]);
    } else if (std::isinf(e[i]) || std::isinf(a[i])) {
      ok = e[i] == a[i];
    } else {
      ok = std::fabs(e[i] - a[i]) <= atol + rtol * std::fabs(e[i]);
    }
    if (!ok && reported++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " of " << shape_str(expected.shape()) << ": expected " << e[i]
                    << ", got " << a[i];
    }
  }
}

inline void expect_equal(const Tensor& expected, const Tensor& actual, const std::string& what) {
  expect_close(expected, actual, 0.0, 0.0, what);
}

// Tolerances for float results computed in a different order / with different libm: float32, float64.
inline double rtol_for(DType d) { return d == DType::Float32 ? 2e-5 : (d == DType::Float64 ? 1e-12 : 0.0); }
inline double atol_for(DType d) { return d == DType::Float32 ? 2e-6 : (d == DType::Float64 ? 1e-13 : 0.0); }

}  // namespace glance::cuda_testing
