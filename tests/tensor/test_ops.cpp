// The plain ops of tensor/ops.h, checked against hand-computed values (or a float64 loop where a hand
// value would be unreadable), plus the error messages: every op that rejects its inputs must say which
// op it is and what it was given.
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace {

using namespace glance;

constexpr DType F32 = DType::Float32;
constexpr DType F64 = DType::Float64;
constexpr DType I64 = DType::Int64;
const double kInf = std::numeric_limits<double>::infinity();
const float kInfF = std::numeric_limits<float>::infinity();

Tensor f32(const std::vector<float>& v, const Shape& s) { return ops::from_vector(v, s); }
Tensor f64(const std::vector<double>& v, const Shape& s) { return ops::from_vector(v, s); }
Tensor i64(const std::vector<int64_t>& v, const Shape& s) { return ops::from_vector(v, s); }
Tensor boolean(const std::vector<bool>& v, const Shape& s) { return ops::from_vector(v, s); }

// 0, 1, 2, ... as float32 in the given shape.
Tensor iota(const Shape& s) {
  std::vector<float> v(static_cast<size_t>(numel_of(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return f32(v, s);
}

// The elements in row-major order as doubles, read with the tensor's own C++ type.
std::vector<double> read(const Tensor& t) {
  std::vector<double> out;
  GLANCE_DISPATCH(t.dtype(), T, {
    for (T v : t.to_vector<T>()) out.push_back(static_cast<double>(v));
  });
  return out;
}

// Shape, dtype and values; `tol` is relative to max(1, |expected|). Infinities must match exactly.
void expect_tensor(const Tensor& t, DType dtype, const Shape& shape, const std::vector<double>& expected,
                   double tol = 1e-6) {
  ASSERT_TRUE(t.defined());
  EXPECT_EQ(dtype_name(t.dtype()), std::string(dtype_name(dtype)));
  ASSERT_EQ(shape_str(t.shape()), shape_str(shape));
  std::vector<double> got = read(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(expected[i]) || std::isnan(expected[i])) {
      if (std::isnan(expected[i])) EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": " << got[i];
      else EXPECT_EQ(got[i], expected[i]) << "element " << i;
    } else {
      EXPECT_NEAR(got[i], expected[i], tol * std::max(1.0, std::abs(expected[i]))) << "element " << i;
    }
  }
}

// f must throw exactly an E (or a subclass) whose message contains every piece.
template <typename E, typename F>
void expect_error(F&& f, std::initializer_list<const char*> pieces) {
  try {
    f();
  } catch (const E& e) {
    std::string msg = e.what();
    for (const char* p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type; message: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}

// The same, with the caller's line in the failure report.
#define EXPECT_ERROR(E, ...)        \
  do {                              \
    SCOPED_TRACE("EXPECT_ERROR");   \
    expect_error<E>(__VA_ARGS__);   \
  } while (0)

}  // namespace

// =============================================================================================
// creation
// =============================================================================================

TEST(OpsCreation, ZerosOnesFull) {
  Tensor z = ops::zeros({2, 3});
  expect_tensor(z, F32, {2, 3}, {0, 0, 0, 0, 0, 0});
  EXPECT_EQ(z.strides(), (Strides{3, 1}));
  EXPECT_TRUE(z.is_contiguous());
  expect_tensor(ops::ones({3}, I64), I64, {3}, {1, 1, 1});
  expect_tensor(ops::full({2, 2}, 2.5, F64), F64, {2, 2}, {2.5, 2.5, 2.5, 2.5});
  expect_tensor(ops::full({2}, -1, DType::Int32), DType::Int32, {2}, {-1, -1});
  expect_tensor(ops::zeros({0, 4}), F32, {0, 4}, {});

  Tensor s = ops::scalar(3.5, F64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_DOUBLE_EQ(s.item(), 3.5);

  Tensor like = ops::full_like(ops::zeros({2}, I64), 7);
  expect_tensor(like, I64, {2}, {7, 7});
  expect_tensor(ops::ones_like(f64({1, 2, 3}, {3, 1})), F64, {3, 1}, {1, 1, 1});
  expect_tensor(ops::zeros_like(f32({1, 2}, {1, 2})), F32, {1, 2}, {0, 0});
}

TEST(OpsCreation, Arange) {
  expect_tensor(ops::arange(0, 5), I64, {5}, {0, 1, 2, 3, 4});
  expect_tensor(ops::arange(2, 9, 3), I64, {3}, {2, 5, 8});
  expect_tensor(ops::arange(5, 0, -2), I64, {3}, {5, 3, 1});
  expect_tensor(ops::arange(1, 2, 0.25, F32), F32, {4}, {1, 1.25, 1.5, 1.75});
  expect_tensor(ops::arange(0, 1, 0.1, F64), F64, {10}, {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 1e-12);
  expect_tensor(ops::arange(-1, 1, 0.5, F64), F64, {4}, {-1, -0.5, 0, 0.5});
  // Element i is fma(i, step, start), one rounding on every device and build: 3 * 0.3 + 0.1 rounded twice is
  // 0.9999999999999999, once it is 1.0.
  const std::vector<double> fractional = ops::arange(0.1, 2, 0.3, F64).to_vector<double>();
  ASSERT_EQ(fractional.size(), 7u);
  for (size_t i = 0; i < fractional.size(); ++i) EXPECT_EQ(fractional[i], std::fma(double(i), 0.3, 0.1)) << i;
  EXPECT_EQ(fractional[3], 1.0);
  // Empty ranges.
  expect_tensor(ops::arange(5, 2), I64, {0}, {});
  expect_tensor(ops::arange(3, 3), I64, {0}, {});
  expect_tensor(ops::arange(0, 5, -1, F32), F32, {0}, {});
  EXPECT_ERROR(std::invalid_argument, [] { ops::arange(0, 5, 0); }, {"arange"});
}

TEST(OpsCreation, Eye) {
  expect_tensor(ops::eye(3), F32, {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  expect_tensor(ops::eye(1, I64), I64, {1, 1}, {1});
  expect_tensor(ops::eye(0), F32, {0, 0}, {});
}

TEST(OpsCreation, FromVector) {
  expect_tensor(i64({1, -2, 3, 4, 5, 6}, {2, 3}), I64, {2, 3}, {1, -2, 3, 4, 5, 6});
  expect_tensor(boolean({true, false, true}, {3}), DType::Bool, {3}, {1, 0, 1});
  expect_tensor(ops::from_vector(std::vector<uint8_t>{0, 255}), DType::UInt8, {2}, {0, 255});
  EXPECT_ERROR(std::invalid_argument, [] { f32({1, 2, 3}, {2, 2}); }, {"from_vector", "[2, 2]"});
}

// =============================================================================================
// copies and dtypes
// =============================================================================================

TEST(OpsCopy, CloneIsAFreshContiguousCopy) {
  Tensor x = iota({2, 3});
  Tensor t = ops::transpose(x, 0, 1);
  Tensor c = ops::clone(t);
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_TRUE(c.is_contiguous());
  expect_tensor(c, F32, {3, 2}, {0, 3, 1, 4, 2, 5});
  ops::fill_(c, 9);
  expect_tensor(x, F32, {2, 3}, {0, 1, 2, 3, 4, 5});  // the original is untouched
}

TEST(OpsCopy, ToDtypeConverts) {
  Tensor x = f32({2.7f, -2.7f, 0.0f, 0.5f}, {4});
  expect_tensor(ops::to_dtype(x, I64), I64, {4}, {2, -2, 0, 0});  // truncation toward zero, as C++ and torch
  expect_tensor(ops::to_dtype(x, DType::Bool), DType::Bool, {4}, {1, 1, 0, 1});  // nonzero is true
  expect_tensor(ops::to_dtype(x, F64), F64, {4}, {2.7f, -2.7f, 0.0, 0.5});
  expect_tensor(ops::to_dtype(boolean({true, false}, {2}), F32), F32, {2}, {1, 0});
  Tensor same = ops::to_dtype(x, F32);
  EXPECT_TRUE(same.same(x)) << "to_dtype to the same dtype returns the tensor itself";
  // A non-contiguous source.
  expect_tensor(ops::to_dtype(ops::transpose(iota({2, 3}), 0, 1), I64), I64, {3, 2}, {0, 3, 1, 4, 2, 5});
}

TEST(OpsCopy, CopyBroadcastsAndConverts) {
  Tensor dst = ops::zeros({2, 3});
  ops::copy_(dst, f64({1.5, 2.5, 3.5}, {3}));
  expect_tensor(dst, F32, {2, 3}, {1.5, 2.5, 3.5, 1.5, 2.5, 3.5});
  // Into a strided view: column 1 of a [3, 3] matrix.
  Tensor m = ops::zeros({3, 3}, I64);
  ops::copy_(ops::select(m, 1, 1), i64({7, 8, 9}, {3}));
  expect_tensor(m, I64, {3, 3}, {0, 7, 0, 0, 8, 0, 0, 9, 0});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::copy_(ops::zeros({3}), ops::zeros({2, 3})); }, {"copy_"});
}

TEST(OpsCopy, AddInPlace) {
  Tensor dst = f32({1, 2, 3, 4}, {2, 2});
  ops::add_(dst, f32({10, 20}, {2}), 0.5);
  expect_tensor(dst, F32, {2, 2}, {6, 12, 8, 14});
  ops::add_(dst, f64({1, 1, 1, 1}, {2, 2}));  // converted to dst's dtype
  expect_tensor(dst, F32, {2, 2}, {7, 13, 9, 15});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::add_(dst, ops::zeros({3})); }, {"add_"});
}

TEST(OpsCopy, MulInPlace) {
  Tensor dst = f32({1, 2, 3, 4}, {2, 2});
  const void* storage = dst.raw_data();
  ops::mul_(dst, f32({10, 0.5}, {2}));  // a row broadcast down the columns
  expect_tensor(dst, F32, {2, 2}, {10, 1, 30, 2});
  ops::mul_(dst, ops::scalar(-2.0, F64));  // a 0-dim float64 factor, converted to dst's dtype
  expect_tensor(dst, F32, {2, 2}, {-20, -2, -60, -4});
  EXPECT_EQ(dst.raw_data(), storage) << "in place";
  Tensor column = ops::transpose(dst, 0, 1);  // a strided destination
  ops::mul_(column, f32({1, 0}, {2}));
  expect_tensor(dst, F32, {2, 2}, {-20, -2, 0, 0});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::mul_(dst, ops::zeros({2, 2, 2})); }, {"mul_", "[2, 2, 2]"});
}

// =============================================================================================
// views
// =============================================================================================

TEST(OpsViews, ViewsShareStorage) {
  Tensor base = iota({3, 4});
  Tensor v = ops::narrow(base, 1, 1, 2);
  EXPECT_EQ(v.storage(), base.storage());
  ops::fill_(v, -1);
  expect_tensor(base, F32, {3, 4}, {0, -1, -1, 3, 4, -1, -1, 7, 8, -1, -1, 11});

  ops::fill_(ops::select(base, 0, 2), 5);  // writes row 2
  ops::fill_(ops::slice(ops::transpose(base, 0, 1), 0, 0, 4, 3), 0);  // columns 0 and 3 of base
  expect_tensor(base, F32, {3, 4}, {0, -1, -1, 0, 0, -1, -1, 0, 0, 5, 5, 0});

  Tensor r = ops::reshape(base, {12});
  r.data<float>()[1] = 42;
  EXPECT_EQ(base.to_vector<float>()[1], 42.0f);
}

TEST(OpsViews, TransposeIsNotContiguous) {
  Tensor x = iota({2, 3});
  Tensor t = ops::transpose(x, 0, 1);
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.strides(), (Strides{1, 3}));
  expect_tensor(t, F32, {3, 2}, {0, 3, 1, 4, 2, 5});
  Tensor c = ops::contiguous(t);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), x.storage());
  expect_tensor(c, F32, {3, 2}, {0, 3, 1, 4, 2, 5});
  EXPECT_TRUE(ops::contiguous(x).same(x)) << "contiguous() of a contiguous tensor must not copy";
  // Size-1 axes do not break contiguity.
  EXPECT_TRUE(ops::transpose(iota({1, 4}), 0, 1).is_contiguous());
}

TEST(OpsViews, ReshapeViewVersusCopy) {
  Tensor x = iota({2, 6});
  Tensor v = ops::reshape(x, {3, -1});
  EXPECT_EQ(v.storage(), x.storage()) << "reshape of a contiguous tensor is a view";
  expect_tensor(v, F32, {3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});

  Tensor t = ops::transpose(x, 0, 1);  // [6, 2]
  Tensor c = ops::reshape(t, {12});
  EXPECT_NE(c.storage(), x.storage()) << "flattening a transpose must copy";
  expect_tensor(c, F32, {12}, {0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11});

  // Splitting the leading axis of a transpose is still a view.
  Tensor s = ops::reshape(t, {2, 3, 2});
  EXPECT_EQ(s.storage(), x.storage());
  expect_tensor(s, F32, {2, 3, 2}, {0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11});

  expect_tensor(ops::view(x, {12}), F32, {12}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::view(t, {12}); }, {"view", "[6, 2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::reshape(x, {5, -1}); }, {"reshape", "[2, 6]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::reshape(x, {-1, -1}); }, {"reshape"});
  expect_tensor(ops::reshape(ops::scalar(4), {1, 1}), F32, {1, 1}, {4});
}

TEST(OpsViews, Permute) {
  Tensor x = iota({2, 3, 4});
  Tensor p = ops::permute(x, {2, 0, 1});  // p[k][i][j] = x[i][j][k] = 12i + 4j + k
  ASSERT_EQ(p.shape(), (Shape{4, 2, 3}));
  std::vector<double> expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(12 * i + 4 * j + k);
  expect_tensor(p, F32, {4, 2, 3}, expected);
  expect_tensor(ops::permute(x, {-1, -3, -2}), F32, {4, 2, 3}, expected);
  EXPECT_EQ(p.storage(), x.storage());
}

TEST(OpsViews, Transpose) {
  Tensor x = iota({2, 3, 4});
  Tensor t = ops::transpose(x, 0, 2);  // t[k][j][i] = x[i][j][k]
  std::vector<double> expected;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) expected.push_back(12 * i + 4 * j + k);
  expect_tensor(t, F32, {4, 3, 2}, expected);
  expect_tensor(ops::transpose(x, -1, 0), F32, {4, 3, 2}, expected);
  expect_tensor(ops::transpose(x, 1, 1), F32, {2, 3, 4}, read(x));
}

TEST(OpsViews, Narrow) {
  Tensor x = iota({3, 4});
  expect_tensor(ops::narrow(x, 0, 1, 2), F32, {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
  expect_tensor(ops::narrow(x, -1, 2, 2), F32, {3, 2}, {2, 3, 6, 7, 10, 11});
  expect_tensor(ops::narrow(x, 0, -1, 1), F32, {1, 4}, {8, 9, 10, 11});  // negative start counts from the end
  expect_tensor(ops::narrow(x, 1, 4, 0), F32, {3, 0}, {});
  EXPECT_ERROR(std::out_of_range, [&] { ops::narrow(x, 1, 3, 2); }, {"narrow", "[3, 4]"});
}

TEST(OpsViews, Slice) {
  Tensor a = iota({10});
  expect_tensor(ops::slice(a, 0, 1, 8, 3), F32, {3}, {1, 4, 7});
  expect_tensor(ops::slice(a, 0, 1, 7, 3), F32, {2}, {1, 4});
  expect_tensor(ops::slice(a, 0, -3, 100), F32, {3}, {7, 8, 9});       // negative start, clamped end
  expect_tensor(ops::slice(a, 0, -100, 2), F32, {2}, {0, 1});          // clamped start
  expect_tensor(ops::slice(a, 0, 0, -7), F32, {3}, {0, 1, 2});         // negative end
  expect_tensor(ops::slice(a, 0, 8, 2), F32, {0}, {});                 // end before start: empty
  expect_tensor(ops::slice(a, 0, 12, 20), F32, {0}, {});               // past the end: empty
  expect_tensor(ops::slice(a, 0, 0, 10, 4), F32, {3}, {0, 4, 8});
  Tensor m = iota({2, 5});
  expect_tensor(ops::slice(m, 1, 0, 5, 2), F32, {2, 3}, {0, 2, 4, 5, 7, 9});
  expect_tensor(ops::slice(ops::slice(m, 1, 1, 5, 2), 1, 1, 2), F32, {2, 1}, {3, 8});  // slice of a slice
  EXPECT_ERROR(std::invalid_argument, [&] { ops::slice(a, 0, 0, 5, 0); }, {"slice", "step"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::slice(a, 0, 0, 5, -1); }, {"slice", "step"});
}

TEST(OpsViews, Select) {
  Tensor x = iota({2, 3, 4});
  expect_tensor(ops::select(x, 0, 1), F32, {3, 4}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  expect_tensor(ops::select(x, 1, -1), F32, {2, 4}, {8, 9, 10, 11, 20, 21, 22, 23});
  expect_tensor(ops::select(x, 2, 0), F32, {2, 3}, {0, 4, 8, 12, 16, 20});
  Tensor s = ops::select(ops::select(x, 0, 1), 0, 2);  // down to 1-D, then to a scalar
  expect_tensor(ops::select(s, 0, 3), F32, {}, {23});
  EXPECT_ERROR(std::out_of_range, [&] { ops::select(x, 1, 3); }, {"select", "index 3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::select(x, 1, -4); }, {"select", "index -4"});
}

TEST(OpsViews, Expand) {
  Tensor c = f32({1, 2, 3}, {3, 1});
  Tensor e = ops::expand(c, {2, 3, 4});
  EXPECT_EQ(e.storage(), c.storage());
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(e.strides()[2], 0);
  std::vector<double> expected;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) expected.push_back(i + 1);
  expect_tensor(e, F32, {2, 3, 4}, expected);
  expect_tensor(ops::expand(f32({5, 6}, {1, 2}), {3, -1}), F32, {3, 2}, {5, 6, 5, 6, 5, 6});
  expect_tensor(ops::expand(ops::scalar(7), {2, 2}), F32, {2, 2}, {7, 7, 7, 7});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::expand(c, {3, 4, 2}); }, {"expand", "[3, 1]", "[3, 4, 2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::expand(c, {4}); }, {"expand", "[3, 1]"});
}

TEST(OpsViews, SqueezeUnsqueezeFlatten) {
  Tensor x = iota({3, 1, 2, 1});
  expect_tensor(ops::squeeze(x, 1), F32, {3, 2, 1}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::squeeze(x, -1), F32, {3, 1, 2}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::squeeze(x), F32, {3, 2}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::squeeze(ops::zeros({1, 1})), F32, {}, {0});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::squeeze(x, 0); }, {"squeeze", "[3, 1, 2, 1]"});

  Tensor y = iota({2, 3});
  expect_tensor(ops::unsqueeze(y, 0), F32, {1, 2, 3}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::unsqueeze(y, 1), F32, {2, 1, 3}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::unsqueeze(y, 2), F32, {2, 3, 1}, {0, 1, 2, 3, 4, 5});
  expect_tensor(ops::unsqueeze(y, -1), F32, {2, 3, 1}, {0, 1, 2, 3, 4, 5});
  EXPECT_TRUE(ops::unsqueeze(y, 1).is_contiguous());
  expect_tensor(ops::unsqueeze(ops::transpose(y, 0, 1), 1), F32, {3, 1, 2}, {0, 3, 1, 4, 2, 5});
  EXPECT_ERROR(std::out_of_range, [&] { ops::unsqueeze(y, 3); }, {"unsqueeze", "axis 3"});

  Tensor z = iota({2, 3, 4});
  expect_tensor(ops::flatten(z), F32, {24}, read(z));
  expect_tensor(ops::flatten(z, 1), F32, {2, 12}, read(z));
  expect_tensor(ops::flatten(z, 0, 1), F32, {6, 4}, read(z));
  expect_tensor(ops::flatten(z, -2, -1), F32, {2, 12}, read(z));
  expect_tensor(ops::flatten(ops::scalar(3)), F32, {1}, {3});
  // Flattening a transpose copies, in the transpose's element order.
  expect_tensor(ops::flatten(ops::transpose(y, 0, 1)), F32, {6}, {0, 3, 1, 4, 2, 5});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::flatten(z, 2, 1); }, {"flatten"});
}

// =============================================================================================
// elementwise
// =============================================================================================

TEST(OpsElementwise, BinarySameShape) {
  Tensor a = f32({1, -2, 3, 4}, {2, 2});
  Tensor b = f32({2, 5, -1, 0.5f}, {2, 2});
  expect_tensor(ops::binary(BinaryOp::Add, a, b), F32, {2, 2}, {3, 3, 2, 4.5});
  expect_tensor(ops::binary(BinaryOp::Sub, a, b), F32, {2, 2}, {-1, -7, 4, 3.5});
  expect_tensor(ops::binary(BinaryOp::Mul, a, b), F32, {2, 2}, {2, -10, -3, 2});
  expect_tensor(ops::binary(BinaryOp::Div, a, b), F32, {2, 2}, {0.5, -0.4, -3, 8});
  expect_tensor(ops::binary(BinaryOp::Maximum, a, b), F32, {2, 2}, {2, 5, 3, 4});
  expect_tensor(ops::binary(BinaryOp::Minimum, a, b), F32, {2, 2}, {1, -2, -1, 0.5});
  Tensor base = f32({2, 9, 4, 3}, {2, 2});
  Tensor ex = f32({3, 0.5f, -1, 2}, {2, 2});
  expect_tensor(ops::binary(BinaryOp::Pow, base, ex), F32, {2, 2}, {8, 3, 0.25, 9});
  // Integers.
  Tensor ia = i64({7, -3, 10}, {3}), ib = i64({2, 5, -4}, {3});
  expect_tensor(ops::binary(BinaryOp::Add, ia, ib), I64, {3}, {9, 2, 6});
  expect_tensor(ops::binary(BinaryOp::Mul, ia, ib), I64, {3}, {14, -15, -40});
  expect_tensor(ops::binary(BinaryOp::Maximum, ia, ib), I64, {3}, {7, 5, 10});
  // float64 keeps its precision.
  expect_tensor(ops::binary(BinaryOp::Add, f64({1e-12}, {1}), f64({1}, {1})), F64, {1}, {1 + 1e-12}, 1e-15);
}

TEST(OpsElementwise, BroadcastColumnWithRow) {
  Tensor col = f32({1, 2, 3}, {3, 1});
  Tensor row = f32({10, 20, 30, 40}, {1, 4});
  expect_tensor(ops::binary(BinaryOp::Add, col, row), F32, {3, 4},
                {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  expect_tensor(ops::binary(BinaryOp::Sub, row, col), F32, {3, 4}, {9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37});
  expect_tensor(ops::binary(BinaryOp::Mul, col, row), F32, {3, 4},
                {10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120});
  // [4] against [2, 3, 4] and a scalar tensor [] against [2].
  Tensor v = f32({1, 2, 3, 4}, {4});
  Tensor big = ops::zeros({2, 3, 4});
  Tensor s = ops::binary(BinaryOp::Add, big, v);
  EXPECT_EQ(s.shape(), (Shape{2, 3, 4}));
  std::vector<double> expected;
  for (int i = 0; i < 6; ++i) expected.insert(expected.end(), {1, 2, 3, 4});
  expect_tensor(s, F32, {2, 3, 4}, expected);
  expect_tensor(ops::binary(BinaryOp::Div, ops::scalar(6), f32({2, 3}, {2})), F32, {2}, {3, 2});
  // A non-contiguous operand.
  Tensor t = ops::transpose(iota({2, 3}), 0, 1);  // [[0, 3], [1, 4], [2, 5]]
  expect_tensor(ops::binary(BinaryOp::Add, t, f32({100, 200}, {2})), F32, {3, 2}, {100, 203, 101, 204, 102, 205});
}

TEST(OpsElementwise, ScalarOverloads) {
  Tensor a = f32({1, -2, 4}, {3});
  expect_tensor(ops::binary(BinaryOp::Add, a, 1.5), F32, {3}, {2.5, -0.5, 5.5});
  expect_tensor(ops::binary(BinaryOp::Sub, a, 2), F32, {3}, {-1, -4, 2});
  expect_tensor(ops::binary(BinaryOp::Mul, a, -3), F32, {3}, {-3, 6, -12});
  expect_tensor(ops::binary(BinaryOp::Div, a, 4), F32, {3}, {0.25, -0.5, 1});
  expect_tensor(ops::binary(BinaryOp::Pow, a, 2), F32, {3}, {1, 4, 16});
  expect_tensor(ops::binary(BinaryOp::Pow, f32({4, 9}, {2}), 0.5), F32, {2}, {2, 3});
  expect_tensor(ops::binary(BinaryOp::Maximum, a, 0), F32, {3}, {1, 0, 4});
  expect_tensor(ops::binary(BinaryOp::Minimum, a, 0), F32, {3}, {0, -2, 0});
  expect_tensor(ops::binary(BinaryOp::Gt, a, 0), DType::Bool, {3}, {1, 0, 1});
  expect_tensor(ops::binary(BinaryOp::Eq, a, 4), DType::Bool, {3}, {0, 0, 1});
  expect_tensor(ops::binary(BinaryOp::Add, i64({1, 2}, {2}), 3), I64, {2}, {4, 5});  // takes a's dtype
  expect_tensor(ops::binary(BinaryOp::Mul, ops::transpose(iota({2, 2}), 0, 1), 2), F32, {2, 2}, {0, 4, 2, 6});
}

TEST(OpsElementwise, ComparisonsGiveBool) {
  Tensor a = f32({1, 2, 3}, {3});
  Tensor b = f32({3, 2, 1}, {3});
  expect_tensor(ops::binary(BinaryOp::Eq, a, b), DType::Bool, {3}, {0, 1, 0});
  expect_tensor(ops::binary(BinaryOp::Ne, a, b), DType::Bool, {3}, {1, 0, 1});
  expect_tensor(ops::binary(BinaryOp::Lt, a, b), DType::Bool, {3}, {1, 0, 0});
  expect_tensor(ops::binary(BinaryOp::Le, a, b), DType::Bool, {3}, {1, 1, 0});
  expect_tensor(ops::binary(BinaryOp::Gt, a, b), DType::Bool, {3}, {0, 0, 1});
  expect_tensor(ops::binary(BinaryOp::Ge, a, b), DType::Bool, {3}, {0, 1, 1});
  // Broadcast, and on integers and bools.
  expect_tensor(ops::binary(BinaryOp::Lt, f32({1, 2}, {2, 1}), f32({0, 1.5f, 3}, {3})), DType::Bool, {2, 3},
                {0, 1, 1, 0, 0, 1});
  expect_tensor(ops::binary(BinaryOp::Eq, i64({5, 6}, {2}), i64({5, 7}, {2})), DType::Bool, {2}, {1, 0});
  expect_tensor(ops::binary(BinaryOp::Ne, boolean({true, false}, {2}), boolean({true, true}, {2})), DType::Bool, {2},
                {0, 1});
}

TEST(OpsElementwise, UnaryAgainstTheStandardLibrary) {
  const std::vector<double> xs = {-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 3.0};
  auto check = [&](UnaryOp op, double (*ref)(double), const std::vector<double>& domain) {
    std::vector<double> expected;
    for (double v : domain) expected.push_back(ref(v));
    SCOPED_TRACE(ops::op_name(op));
    expect_tensor(ops::unary(op, f64(domain, {static_cast<int64_t>(domain.size())})), F64,
                  {static_cast<int64_t>(domain.size())}, expected, 1e-12);
    // The same through float32.
    std::vector<float> d32(domain.begin(), domain.end());
    expect_tensor(ops::unary(op, f32(d32, {static_cast<int64_t>(d32.size())})), F32,
                  {static_cast<int64_t>(d32.size())}, expected, 1e-5);
  };
  const std::vector<double> positive = {0.1, 0.5, 1.0, 2.0, 9.0};
  check(UnaryOp::Neg, [](double v) { return -v; }, xs);
  check(UnaryOp::Exp, [](double v) { return std::exp(v); }, xs);
  check(UnaryOp::Log, [](double v) { return std::log(v); }, positive);
  check(UnaryOp::Sqrt, [](double v) { return std::sqrt(v); }, positive);
  check(UnaryOp::Rsqrt, [](double v) { return 1 / std::sqrt(v); }, positive);
  check(UnaryOp::Abs, [](double v) { return std::abs(v); }, xs);
  check(UnaryOp::Tanh, [](double v) { return std::tanh(v); }, xs);
  check(UnaryOp::Sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }, xs);
  check(UnaryOp::Relu, [](double v) { return v > 0 ? v : 0.0; }, xs);
  check(UnaryOp::GeluErf, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, xs);
  check(UnaryOp::GeluTanh, [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / 3.141592653589793) * (v + 0.044715 * v * v * v)));
  }, xs);
  check(UnaryOp::Sin, [](double v) { return std::sin(v); }, xs);
  check(UnaryOp::Cos, [](double v) { return std::cos(v); }, xs);
  check(UnaryOp::Sign, [](double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }, xs);

  // Edge values.
  expect_tensor(ops::unary(UnaryOp::Log, f64({0}, {1})), F64, {1}, {-kInf});
  expect_tensor(ops::unary(UnaryOp::Sigmoid, f32({-100, 100}, {2})), F32, {2}, {0, 1});
  expect_tensor(ops::unary(UnaryOp::Exp, f32({-1000}, {1})), F32, {1}, {0});
  // Integer inputs where they make sense; logical_not on bools.
  expect_tensor(ops::unary(UnaryOp::Neg, i64({3, -4}, {2})), I64, {2}, {-3, 4});
  expect_tensor(ops::unary(UnaryOp::Abs, i64({3, -4}, {2})), I64, {2}, {3, 4});
  expect_tensor(ops::unary(UnaryOp::Relu, i64({3, -4}, {2})), I64, {2}, {3, 0});
  expect_tensor(ops::unary(UnaryOp::LogicalNot, boolean({true, false}, {2})), DType::Bool, {2}, {0, 1});
  // A strided input.
  expect_tensor(ops::unary(UnaryOp::Neg, ops::transpose(iota({2, 2}), 0, 1)), F32, {2, 2}, {0, -2, -1, -3});
}

TEST(OpsElementwise, LargeStridedInputsMatchAnElementLoop) {
  // Big enough for the multi-threaded path; transposed so the kernel cannot treat it as one row.
  const int64_t R = 300, C = 257;
  Tensor x = ops::reshape(ops::arange(0, static_cast<double>(R * C), 1, F32), {R, C});
  Tensor t = ops::transpose(x, 0, 1);  // [C, R]
  Tensor y = ops::binary(BinaryOp::Mul, t, f32({2}, {1}));
  std::vector<float> got = y.to_vector<float>();
  for (int64_t i = 0; i < C; ++i) {
    for (int64_t j = 0; j < R; ++j) {
      ASSERT_EQ(got[i * R + j], 2.0f * static_cast<float>(j * C + i)) << i << ", " << j;
    }
  }
}

TEST(OpsElementwise, WhereAndMaskedFill) {
  Tensor cond = boolean({true, false, false, true}, {2, 2});
  Tensor a = f32({1, 2, 3, 4}, {2, 2});
  Tensor b = f32({-1, -2, -3, -4}, {2, 2});
  expect_tensor(ops::where(cond, a, b), F32, {2, 2}, {1, -2, -3, 4});
  // Broadcasting: a column condition, a scalar tensor for b.
  expect_tensor(ops::where(boolean({true, false}, {2, 1}), a, ops::scalar(0)), F32, {2, 2}, {1, 2, 0, 0});
  expect_tensor(ops::where(boolean({false, true, true}, {3}), ops::zeros({2, 1}), ops::ones({1, 3})), F32, {2, 3},
                {1, 0, 0, 1, 0, 0});

  expect_tensor(ops::masked_fill(a, cond, -9), F32, {2, 2}, {-9, 2, 3, -9});
  expect_tensor(ops::masked_fill(a, boolean({false, true}, {2}), 0.5), F32, {2, 2}, {1, 0.5, 3, 0.5});
  expect_tensor(ops::masked_fill(i64({1, 2}, {2}), boolean({true, false}, {2}), 7), I64, {2}, {7, 2});
  expect_tensor(ops::masked_fill(a, boolean({true, false, false, false}, {2, 2}), -kInf), F32, {2, 2},
                {-kInf, 2, 3, 4});
}

// =============================================================================================
// reductions
// =============================================================================================

TEST(OpsReduce, SumOverAxes) {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_tensor(ops::sum(x), F32, {}, {21});
  expect_tensor(ops::sum(x, {0}), F32, {3}, {5, 7, 9});
  expect_tensor(ops::sum(x, {1}), F32, {2}, {6, 15});
  expect_tensor(ops::sum(x, {-1}), F32, {2}, {6, 15});
  expect_tensor(ops::sum(x, {-2}, true), F32, {1, 3}, {5, 7, 9});
  expect_tensor(ops::sum(x, {1}, true), F32, {2, 1}, {6, 15});
  expect_tensor(ops::sum(x, {0, 1}, true), F32, {1, 1}, {21});
  expect_tensor(ops::sum(x, {}, true), F32, {1, 1}, {21});
  expect_tensor(ops::sum(x, {1, 0}), F32, {}, {21});

  // [2, 3, 4] with x[i][j][k] = 12i + 4j + k, over axes {0, 2}: out[j] = sum_i sum_k (12i + 4j + k)
  //   = 4 * 12 + 8 * 4j + 2 * 6 = 60 + 32j
  Tensor z = iota({2, 3, 4});
  expect_tensor(ops::sum(z, {0, 2}), F32, {3}, {60, 92, 124});
  expect_tensor(ops::sum(z, {2, -3}, true), F32, {1, 3, 1}, {60, 92, 124});
  // over {1}: out[i][k] = 3 * (12i + k) + 12
  expect_tensor(ops::sum(z, {1}), F32, {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  // A transposed input and an integer one.
  expect_tensor(ops::sum(ops::transpose(x, 0, 1), {1}), F32, {3}, {5, 7, 9});
  expect_tensor(ops::sum(i64({1, 2, 3, 4}, {2, 2}), {0}), I64, {2}, {4, 6});
  // Empty axis sums to 0.
  expect_tensor(ops::sum(ops::zeros({0, 3}), {0}), F32, {3}, {0, 0, 0});
}

TEST(OpsReduce, SumOfManyFloat32ValuesStaysAccurate) {
  // 1 + 2 + ... + 100000 = 5000050000: far beyond float32's exact integers; a naive float accumulator
  // is off by more than 1e-4 relative. Accept 1e-5 relative.
  Tensor x = ops::arange(1, 100001, 1, F32);
  double got = ops::sum(x).item();
  EXPECT_NEAR(got, 5000050000.0, 5000050000.0 * 1e-5);
}

TEST(OpsReduce, LargeStridedInputsMatchADoubleLoop) {
  // [40, 33, 64] float32 viewed through a permute: big enough for the threaded paths, strided so no
  // axis set is one contiguous run. The reference sums in double over the same logical indices.
  const int64_t A = 40, B = 33, C = 64;
  std::vector<float> v(static_cast<size_t>(A * B * C));
  uint32_t s = 12345;
  for (auto& e : v) {
    s = s * 1664525u + 1013904223u;
    e = static_cast<float>((s >> 8) % 2001) / 1000.0f - 1.0f;
  }
  Tensor base = f32(v, {A, B, C});
  Tensor x = ops::permute(base, {2, 0, 1});  // [C, A, B]: x[c][a][b] = base[a][b][c]
  auto at = [&](int64_t c, int64_t a, int64_t b) { return static_cast<double>(v[(a * B + b) * C + c]); };

  std::vector<double> sum_cb(C * B, 0.0), max_ca(C * A, -kInf), all(1, 0.0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t a = 0; a < A; ++a)
      for (int64_t b = 0; b < B; ++b) {
        sum_cb[c * B + b] += at(c, a, b);
        max_ca[c * A + a] = std::max(max_ca[c * A + a], at(c, a, b));
        all[0] += at(c, a, b);
      }
  expect_tensor(ops::sum(x, {1}), F32, {C, B}, sum_cb, 1e-5);
  expect_tensor(ops::max(x, {2}), F32, {C, A}, max_ca, 0);
  expect_tensor(ops::sum(x), F32, {}, all, 1e-5);
  std::vector<double> mean_a(A, 0.0);
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t b = 0; b < B; ++b) mean_a[a] += at(c, a, b);
    mean_a[a] /= static_cast<double>(B * C);
  }
  expect_tensor(ops::mean(x, {0, 2}), F32, {A}, mean_a, 1e-5);
  // argmax along the (strided) middle axis: first index of the max, found by a loop.
  Tensor am = ops::argmax(x, 1);
  std::vector<double> expected_am;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t b = 0; b < B; ++b) {
      int64_t best = 0;
      for (int64_t a = 1; a < A; ++a)
        if (at(c, a, b) > at(c, best, b)) best = a;
      expected_am.push_back(static_cast<double>(best));
    }
  expect_tensor(am, I64, {C, B}, expected_am, 0);
}

TEST(OpsReduce, Mean) {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_tensor(ops::mean(x), F32, {}, {3.5});
  expect_tensor(ops::mean(x, {0}), F32, {3}, {2.5, 3.5, 4.5});
  expect_tensor(ops::mean(x, {-1}, true), F32, {2, 1}, {2, 5});
  expect_tensor(ops::mean(iota({2, 3, 4}), {0, 2}), F32, {3}, {7.5, 11.5, 15.5});
  EXPECT_ERROR(std::invalid_argument, [] { ops::mean(i64({1, 2}, {2})); }, {"mean", "int64"});
}

TEST(OpsReduce, MaxMin) {
  Tensor x = f32({3, -1, 7, -5, 2, 0}, {2, 3});
  expect_tensor(ops::max(x), F32, {}, {7});
  expect_tensor(ops::min(x), F32, {}, {-5});
  expect_tensor(ops::max(x, {0}), F32, {3}, {3, 2, 7});
  expect_tensor(ops::min(x, {0}), F32, {3}, {-5, -1, 0});
  expect_tensor(ops::max(x, {1}), F32, {2}, {7, 2});
  expect_tensor(ops::min(x, {-1}, true), F32, {2, 1}, {-1, -5});
  expect_tensor(ops::max(ops::unary(UnaryOp::Neg, iota({2, 3, 4})), {0, 2}), F32, {3}, {0, -4, -8});
  expect_tensor(ops::max(f32({-3, -7}, {2})), F32, {}, {-3});  // all negative: not max(0, ...)
  expect_tensor(ops::min(f32({kInfF, 5}, {2})), F32, {}, {5});
  expect_tensor(ops::max(f32({-kInfF, -kInfF}, {2})), F32, {}, {-kInf});
  expect_tensor(ops::max(i64({4, -9, 12}, {3})), I64, {}, {12});
  EXPECT_ERROR(std::invalid_argument, [] { ops::max(ops::zeros({0, 2}), {0}); }, {"max", "empty"});
}

TEST(OpsReduce, Var) {
  Tensor x = f32({1, 2, 3, 4}, {4});  // mean 2.5, squared deviations sum to 5
  expect_tensor(ops::var(x, {}, 1), F32, {}, {5.0 / 3});
  expect_tensor(ops::var(x, {}, 0), F32, {}, {1.25});
  Tensor m = f64({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  expect_tensor(ops::var(m, {1}), F64, {2}, {5.0 / 3, 20.0 / 3}, 1e-12);  // correction 1 is the default
  expect_tensor(ops::var(m, {1}, 0, true), F64, {2, 1}, {1.25, 5}, 1e-12);
  // Over axis 0: columns (1, 2), (2, 4), (3, 6), (4, 8): deviations +-d/2, so var1 = d^2 / 2.
  expect_tensor(ops::var(m, {0}, 1), F64, {4}, {0.5, 2, 4.5, 8}, 1e-12);
  expect_tensor(ops::var(m, {0}, 0), F64, {4}, {0.25, 1, 2.25, 4}, 1e-12);
  // Over everything: mean 3.75, sum of squared deviations 150 - 8 * 3.75^2 = 37.5.
  expect_tensor(ops::var(m, {0, 1}, 1), F64, {}, {37.5 / 7}, 1e-12);
  expect_tensor(ops::var(m, {}, 0), F64, {}, {37.5 / 8}, 1e-12);
  // One element with correction 1: no degrees of freedom left.
  EXPECT_TRUE(std::isnan(ops::var(f32({3}, {1}), {}, 1).item()));
  EXPECT_ERROR(std::invalid_argument, [] { ops::var(i64({1, 2}, {2})); }, {"var", "int64"});
}

TEST(OpsReduce, ArgmaxArgminTakeTheFirstOfTies) {
  Tensor x = f32({1, 3, 3, 0, 2, 2, 1, 2}, {2, 4});
  expect_tensor(ops::argmax(x, 1), I64, {2}, {1, 0});
  expect_tensor(ops::argmin(x, 1), I64, {2}, {3, 2});
  expect_tensor(ops::argmax(x, 0), I64, {4}, {1, 0, 0, 1});
  expect_tensor(ops::argmin(x, 0), I64, {4}, {0, 1, 1, 0});
  expect_tensor(ops::argmax(x, -1, true), I64, {2, 1}, {1, 0});
  expect_tensor(ops::argmax(f32({5, 5, 5}, {3}), 0), I64, {}, {0});
  expect_tensor(ops::argmin(i64({4, -2, 9, -2}, {4}), 0), I64, {}, {1});
  expect_tensor(ops::argmax(ops::transpose(x, 0, 1), 0), I64, {2}, {1, 0});
  expect_tensor(ops::argmax(f32({-kInfF, -kInfF, -1}, {3}), 0), I64, {}, {2});
  EXPECT_ERROR(std::out_of_range, [&] { ops::argmax(x, 2); }, {"argmax", "axis 2"});
}

TEST(OpsReduce, SumTo) {
  Tensor x = ops::ones({2, 3, 4});
  expect_tensor(ops::sum_to(x, {3, 1}), F32, {3, 1}, {8, 8, 8});
  expect_tensor(ops::sum_to(x, {4}), F32, {4}, {6, 6, 6, 6});
  expect_tensor(ops::sum_to(x, {1, 1, 4}), F32, {1, 1, 4}, {6, 6, 6, 6});
  expect_tensor(ops::sum_to(x, {2, 1, 1}), F32, {2, 1, 1}, {12, 12});
  expect_tensor(ops::sum_to(x, {}), F32, {}, {24});
  Tensor z = iota({2, 3});
  expect_tensor(ops::sum_to(z, {1, 3}), F32, {1, 3}, {3, 5, 7});
  expect_tensor(ops::sum_to(z, {2, 1}), F32, {2, 1}, {3, 12});
  EXPECT_TRUE(ops::sum_to(z, {2, 3}).same(z));
  EXPECT_ERROR(std::invalid_argument, [&] { ops::sum_to(z, {2}); }, {"sum_to", "[2, 3]"});  // [2] does not broadcast to [2, 3]
  expect_tensor(ops::sum_to(z, {3}), F32, {3}, {3, 5, 7});  // but [3] does
  EXPECT_ERROR(std::invalid_argument, [&] { ops::sum_to(z, {1, 2, 3}); }, {"sum_to"});
}

// =============================================================================================
// matmul
// =============================================================================================

namespace {
// out[b] = a[b] @ b[b] in double, for contiguous row-major data.
std::vector<double> matmul_ref(const std::vector<double>& a, const std::vector<double>& b, int64_t batch, int64_t M,
                               int64_t K, int64_t N, bool broadcast_a = false, bool broadcast_b = false) {
  std::vector<double> out(static_cast<size_t>(batch * M * N), 0.0);
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += a[(broadcast_a ? 0 : p) * M * K + i * K + k] * b[(broadcast_b ? 0 : p) * K * N + k * N + j];
        out[p * M * N + i * N + j] = s;
      }
  return out;
}

std::vector<double> pseudo_random(int64_t n, int seed) {
  std::vector<double> v(static_cast<size_t>(n));
  uint32_t s = 2463534242u + seed;
  for (auto& x : v) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    x = static_cast<double>(s % 2001) / 1000.0 - 1.0;  // in [-1, 1], exact in float32 to ~1e-7
  }
  return v;
}
}  // namespace

TEST(OpsMatmul, TwoByThreeTimesThreeByTwo) {
  Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f32({7, 8, 9, 10, 11, 12}, {3, 2});
  expect_tensor(ops::matmul(a, b), F32, {2, 2}, {58, 64, 139, 154});
  expect_tensor(ops::matmul(ops::to_dtype(a, F64), ops::to_dtype(b, F64)), F64, {2, 2}, {58, 64, 139, 154});
  expect_tensor(ops::matmul(b, a), F32, {3, 3}, {39, 54, 69, 49, 68, 87, 59, 82, 105});
  expect_tensor(ops::matmul(ops::eye(3), b), F32, {3, 2}, {7, 8, 9, 10, 11, 12});
}

TEST(OpsMatmul, IntegerOperands) {
  expect_tensor(ops::matmul(i64({1, 2, 3, 4, 5, 6}, {2, 3}), i64({7, 8, 9, 10, 11, 12}, {3, 2})), I64, {2, 2},
                {58, 64, 139, 154});
}

TEST(OpsMatmul, BatchedWithBroadcast) {
  // a [2, 1, 2, 3] @ b [3, 3, 2] -> [2, 3, 2, 2]: out[i][j] = a[i][0] @ b[j].
  std::vector<double> av = pseudo_random(2 * 2 * 3, 1), bv = pseudo_random(3 * 3 * 2, 2);
  Tensor a = f64(av, {2, 1, 2, 3}), b = f64(bv, {3, 3, 2});
  Tensor out = ops::matmul(a, b);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 2, 2}));
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<double> ai(av.begin() + i * 6, av.begin() + (i + 1) * 6);
      std::vector<double> bj(bv.begin() + j * 6, bv.begin() + (j + 1) * 6);
      for (double v : matmul_ref(ai, bj, 1, 2, 3, 2)) expected.push_back(v);
    }
  expect_tensor(out, F64, {2, 3, 2, 2}, expected, 1e-12);

  // A plain matrix against a batch: [2, 3] @ [4, 3, 5] -> [4, 2, 5].
  std::vector<double> cv = pseudo_random(6, 3), dv = pseudo_random(60, 4);
  expect_tensor(ops::matmul(f64(cv, {2, 3}), f64(dv, {4, 3, 5})), F64, {4, 2, 5},
                matmul_ref(cv, dv, 4, 2, 3, 5, /*broadcast_a=*/true), 1e-12);
  // Same-size batches.
  expect_tensor(ops::matmul(f64(dv, {4, 5, 3}), f64(pseudo_random(4 * 3 * 2, 5), {4, 3, 2})), F64, {4, 5, 2},
                matmul_ref(dv, pseudo_random(24, 5), 4, 5, 3, 2), 1e-12);
}

TEST(OpsMatmul, VectorOperands) {
  Tensor v = f32({1, 2, 3}, {3});
  Tensor m = f32({7, 8, 9, 10, 11, 12}, {3, 2});
  expect_tensor(ops::matmul(v, m), F32, {2}, {58, 64});                                 // 1-D @ 2-D
  expect_tensor(ops::matmul(f32({1, 2, 3, 4, 5, 6}, {2, 3}), f32({1, 0, -1}, {3})), F32, {2}, {-2, -2});  // 2-D @ 1-D
  expect_tensor(ops::matmul(v, f32({4, 5, 6}, {3})), F32, {}, {32});                    // 1-D @ 1-D
  // 1-D against a batch: [3] @ [2, 3, 2] -> [2, 2]; [2, 2, 3] @ [3] -> [2, 2].
  Tensor bm = f32({7, 8, 9, 10, 11, 12, 1, 0, 0, 1, 1, 1}, {2, 3, 2});
  expect_tensor(ops::matmul(v, bm), F32, {2, 2}, {58, 64, 4, 5});
  expect_tensor(ops::matmul(f32({1, 2, 3, 4, 5, 6, 0, 0, 1, 1, 0, 0}, {2, 2, 3}), v), F32, {2, 2}, {14, 32, 3, 1});
}

TEST(OpsMatmul, TransposedViewsAsInputs) {
  // a^T stored as [3, 2], b^T stored as [2, 3]: the transposed views must give the same product.
  Tensor at = f32({1, 4, 2, 5, 3, 6}, {3, 2});   // a = [[1, 2, 3], [4, 5, 6]]
  Tensor bt = f32({7, 9, 11, 8, 10, 12}, {2, 3});  // b = [[7, 8], [9, 10], [11, 12]]
  Tensor a = ops::transpose(at, 0, 1), b = ops::transpose(bt, 0, 1);
  ASSERT_FALSE(a.is_contiguous());
  expect_tensor(ops::matmul(a, b), F32, {2, 2}, {58, 64, 139, 154});
  expect_tensor(ops::matmul(a, f32({7, 8, 9, 10, 11, 12}, {3, 2})), F32, {2, 2}, {58, 64, 139, 154});
  // A column slice (row stride 2) and a batch-transposed operand.
  Tensor wide = f32({1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0}, {2, 6});
  expect_tensor(ops::matmul(ops::slice(wide, 1, 0, 6, 2), b), F32, {2, 2}, {58, 64, 139, 154});
  Tensor batch = ops::transpose(ops::expand(bt, {2, 2, 3}), 1, 2);  // two copies of b, broadcast stride 0
  expect_tensor(ops::matmul(a, batch), F32, {2, 2, 2}, {58, 64, 139, 154, 58, 64, 139, 154});
}

TEST(OpsMatmul, BroadcastRowsAndPermutedBatches) {
  Tensor x = iota({3, 4});
  // Every row of a is the same stored row (stride 0): out[i][j] = x[0][j] + 2 x[1][j] + 3 x[2][j] = 6j + 32.
  Tensor a = ops::expand(f32({1, 2, 3}, {1, 3}), {4, 3});
  expect_tensor(ops::matmul(a, x), F32, {4, 4}, {32, 38, 44, 50, 32, 38, 44, 50, 32, 38, 44, 50, 32, 38, 44, 50});
  // A batch axis that is not outermost in memory: p[m][b][k] = 12m + 4b + k, permuted to [b, m, k];
  // times ones [3, 4, 1] gives the row sums 48m + 16b + 6.
  Tensor p = ops::permute(iota({2, 3, 4}), {1, 0, 2});
  expect_tensor(ops::matmul(p, ops::ones({3, 4, 1})), F32, {3, 2, 1}, {6, 54, 22, 70, 38, 86});
}

TEST(OpsMatmul, LargerShapesAgainstADoubleLoop) {
  // Shapes that are not multiples of any tile size, so every edge path of the GEMM runs.
  struct Case {
    int64_t batch, M, K, N;
  };
  for (Case c : {Case{1, 17, 33, 9}, Case{2, 65, 70, 67}, Case{1, 1, 300, 1}, Case{3, 5, 1, 7}, Case{1, 130, 4, 129}}) {
    SCOPED_TRACE(::testing::Message() << c.batch << " x " << c.M << "x" << c.K << " @ " << c.K << "x" << c.N);
    std::vector<double> av = pseudo_random(c.batch * c.M * c.K, 7), bv = pseudo_random(c.batch * c.K * c.N, 8);
    std::vector<float> af(av.begin(), av.end()), bf(bv.begin(), bv.end());
    std::vector<double> expected = matmul_ref(av, bv, c.batch, c.M, c.K, c.N);
    Tensor out = ops::matmul(f32(af, {c.batch, c.M, c.K}), f32(bf, {c.batch, c.K, c.N}));
    std::vector<double> got = read(out);
    ASSERT_EQ(got.size(), expected.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
    EXPECT_LT(worst, 1e-4 * std::sqrt(static_cast<double>(c.K)) + 1e-5);
    // float64 is exact to rounding.
    expect_tensor(ops::matmul(f64(av, {c.batch, c.M, c.K}), f64(bv, {c.batch, c.K, c.N})), F64,
                  {c.batch, c.M, c.N}, expected, 1e-12);
  }
}

TEST(OpsMatmul, EmptyInnerDimensionGivesZeros) {
  expect_tensor(ops::matmul(ops::zeros({2, 0}), ops::zeros({0, 3})), F32, {2, 3}, {0, 0, 0, 0, 0, 0});
}

// =============================================================================================
// softmax, log_softmax, logsumexp, layer_norm
// =============================================================================================

namespace {
std::vector<double> softmax_ref(const std::vector<double>& x) {
  double m = -kInf;
  for (double v : x) m = std::max(m, v);
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  std::vector<double> out;
  for (double v : x) out.push_back(std::exp(v - m) / s);
  return out;
}
}  // namespace

TEST(OpsRows, Softmax) {
  // softmax([1, 2, 3]) = e^(x - 3) / (e^-2 + e^-1 + 1)
  expect_tensor(ops::softmax(f32({1, 2, 3}, {3})), F32, {3}, {0.09003057, 0.24472847, 0.66524096});
  // Axis -1 (rows) and axis 0 (columns) of one matrix.
  Tensor m = f64({1, 2, 3, 0, 0, 5}, {2, 3});
  std::vector<double> rows;
  for (auto r : {std::vector<double>{1, 2, 3}, std::vector<double>{0, 0, 5}})
    for (double v : softmax_ref(r)) rows.push_back(v);
  expect_tensor(ops::softmax(m, -1), F64, {2, 3}, rows, 1e-12);
  expect_tensor(ops::softmax(m, 1), F64, {2, 3}, rows, 1e-12);
  std::vector<double> c0 = softmax_ref({1, 0}), c1 = softmax_ref({2, 0}), c2 = softmax_ref({3, 5});
  expect_tensor(ops::softmax(m, 0), F64, {2, 3}, {c0[0], c1[0], c2[0], c0[1], c1[1], c2[1]}, 1e-12);
  // Large values stay finite: shifting by the max makes this softmax([0, 1, 2]).
  expect_tensor(ops::softmax(f32({1000, 1001, 1002}, {3})), F32, {3}, {0.09003057, 0.24472847, 0.66524096});
  expect_tensor(ops::softmax(f32({-1000, -1000}, {2})), F32, {2}, {0.5, 0.5});
  // -inf entries (masked positions) get exactly 0.
  expect_tensor(ops::softmax(f32({-kInfF, 0, 0}, {3})), F32, {3}, {0, 0.5, 0.5});
  // A middle axis of a 3-D tensor.
  Tensor z = f64({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});  // softmax over axis 1 pairs (0,2), (1,3), (4,6), (5,7)
  double lo = softmax_ref({0, 2})[0], hi = softmax_ref({0, 2})[1];
  expect_tensor(ops::softmax(z, 1), F64, {2, 2, 2}, {lo, lo, hi, hi, lo, lo, hi, hi}, 1e-12);
}

TEST(OpsRows, LogSoftmax) {
  // log_softmax([1, 2, 3]) = x - logsumexp = x - 3.40760596444
  expect_tensor(ops::log_softmax(f64({1, 2, 3}, {3})), F64, {3}, {-2.40760596444438, -1.40760596444438,
                                                                 -0.40760596444438}, 1e-12);
  expect_tensor(ops::log_softmax(f32({1000, 1001, 1002}, {3})), F32, {3}, {-2.4076059, -1.4076059, -0.4076059});
  expect_tensor(ops::log_softmax(f32({-1e4, 0}, {2})), F32, {2}, {-1e4, 0});  // no log(0) = -inf
  Tensor m = f64({1, 2, 3, 0, 0, 5}, {2, 3});
  // Over axis 0: columns (1, 0), (2, 0), (3, 5).
  auto lse2 = [](double a, double b) { return std::max(a, b) + std::log1p(std::exp(-std::abs(a - b))); };
  double l0 = lse2(1, 0), l1 = lse2(2, 0), l2 = lse2(3, 5);
  expect_tensor(ops::log_softmax(m, 0), F64, {2, 3}, {1 - l0, 2 - l1, 3 - l2, 0 - l0, 0 - l1, 5 - l2}, 1e-12);
}

TEST(OpsRows, Logsumexp) {
  expect_tensor(ops::logsumexp(f64({1, 2, 3}, {3}), {0}), F64, {}, {3.40760596444438}, 1e-12);
  expect_tensor(ops::logsumexp(f32({1000, 1000}, {2}), {0}), F32, {}, {1000 + std::log(2.0)});
  expect_tensor(ops::logsumexp(f32({-1000, -1000}, {2}), {0}), F32, {}, {-1000 + std::log(2.0)});
  // An all -inf row gives -inf (and no NaN); a row with +inf gives +inf.
  Tensor x = f32({-kInfF, -kInfF, -kInfF, 0, 0, 0}, {2, 3});
  expect_tensor(ops::logsumexp(x, {1}), F32, {2}, {-kInf, std::log(3.0)});
  expect_tensor(ops::logsumexp(f32({kInfF, 1}, {2}), {0}), F32, {}, {kInf});
  // keepdim and several axes: ln(sum e^0 over 6 zeros) = ln 6.
  expect_tensor(ops::logsumexp(ops::zeros({2, 3}), {0, 1}, true), F32, {1, 1}, {std::log(6.0)});
  expect_tensor(ops::logsumexp(ops::zeros({2, 3}), {-2}), F32, {3}, {std::log(2.0), std::log(2.0), std::log(2.0)});
  expect_tensor(ops::logsumexp(ops::zeros({2, 3, 2}), {0, 2}, true), F32, {1, 3, 1},
                {std::log(4.0), std::log(4.0), std::log(4.0)});
}

TEST(OpsRows, LayerNormAgainstDouble) {
  const int64_t R = 4, C = 5;
  std::vector<double> xv = pseudo_random(R * C, 11), wv = pseudo_random(C, 12), bv = pseudo_random(C, 13);
  for (int64_t i = 0; i < C; ++i) xv[3 * C + i] = 2.0;  // a constant row: variance 0, only eps keeps it finite
  const double eps = 1e-5;
  std::vector<double> out, mean, rstd, plain;
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += xv[r * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) v += (xv[r * C + c] - m) * (xv[r * C + c] - m);
    v /= C;  // population variance, as LayerNorm
    double s = 1 / std::sqrt(v + eps);
    mean.push_back(m);
    rstd.push_back(s);
    for (int64_t c = 0; c < C; ++c) {
      double n = (xv[r * C + c] - m) * s;
      plain.push_back(n);
      out.push_back(n * wv[c] + bv[c]);
    }
  }
  for (DType dt : {F64, F32}) {
    SCOPED_TRACE(dtype_name(dt));
    double tol = dt == F64 ? 1e-10 : 1e-4;
    Tensor x = ops::to_dtype(f64(xv, {R, C}), dt);
    Tensor w = ops::to_dtype(f64(wv, {C}), dt), b = ops::to_dtype(f64(bv, {C}), dt);
    ops::LayerNormResult r = ops::layer_norm(x, w, b, eps);
    expect_tensor(r.out, dt, {R, C}, out, tol);
    expect_tensor(r.mean, dt, {R}, mean, tol);
    // rstd of the constant row is 1/sqrt(eps) ~ 316: compare relatively.
    expect_tensor(r.rstd, dt, {R}, rstd, tol);
    // No affine parameters.
    expect_tensor(ops::layer_norm(x, Tensor(), Tensor(), eps).out, dt, {R, C}, plain, tol);
    // A 3-D input normalises over its last axis only: [2, 2, 5] is the same rows.
    ops::LayerNormResult r3 = ops::layer_norm(ops::reshape(x, {2, 2, C}), w, b, eps);
    expect_tensor(r3.out, dt, {2, 2, C}, out, tol);
    expect_tensor(r3.mean, dt, {2, 2}, mean, tol);
  }
  // A non-contiguous input: the transpose of a [C, R] matrix.
  std::vector<double> xt(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) xt[c * R + r] = xv[r * C + c];
  Tensor xtv = ops::transpose(f64(xt, {C, R}), 0, 1);
  expect_tensor(ops::layer_norm(xtv, f64(wv, {C}), f64(bv, {C}), eps).out, F64, {R, C}, out, 1e-10);
}

TEST(OpsRows, ManyRowsAgainstADoubleLoop) {
  // 600 rows of 97: the threaded row loop, softmax over a strided axis, and layer norm, each against double.
  const int64_t R = 600, C = 97;
  std::vector<double> xv = pseudo_random(R * C, 21);
  for (auto& e : xv) e *= 8;  // logits in [-8, 8]
  std::vector<float> xf(xv.begin(), xv.end());
  std::vector<double> sm, lsm, ln;
  for (int64_t r = 0; r < R; ++r) {
    std::vector<double> row(xf.begin() + r * C, xf.begin() + (r + 1) * C);  // the float32 inputs, exactly
    std::vector<double> p = softmax_ref(row);
    double m = 0, var = 0;
    for (double e : row) m += e;
    m /= C;
    for (double e : row) var += (e - m) * (e - m);
    var /= C;
    for (int64_t c = 0; c < C; ++c) {
      sm.push_back(p[c]);
      lsm.push_back(std::log(p[c]));
      ln.push_back((row[c] - m) / std::sqrt(var + 1e-5));
    }
  }
  Tensor x = f32(xf, {R, C});
  expect_tensor(ops::softmax(x, -1), F32, {R, C}, sm, 1e-5);
  expect_tensor(ops::log_softmax(x, -1), F32, {R, C}, lsm, 1e-5);
  expect_tensor(ops::layer_norm(x, Tensor(), Tensor(), 1e-5).out, F32, {R, C}, ln, 1e-4);
  // The same rows stored transposed, normalised over axis 0.
  Tensor xt = ops::contiguous(ops::transpose(x, 0, 1));  // [C, R]
  Tensor st = ops::softmax(xt, 0);
  expect_tensor(ops::contiguous(ops::transpose(st, 0, 1)), F32, {R, C}, sm, 1e-5);
}

// =============================================================================================
// joining and splitting
// =============================================================================================

TEST(OpsJoin, Concat) {
  Tensor a = f32({1, 2, 3, 4}, {2, 2});
  Tensor b = f32({5, 6}, {1, 2});
  Tensor c = f32({7, 8, 9, 10, 11, 12}, {2, 3});
  expect_tensor(ops::concat({a, b}, 0), F32, {3, 2}, {1, 2, 3, 4, 5, 6});
  expect_tensor(ops::concat({a, c}, 1), F32, {2, 5}, {1, 2, 7, 8, 9, 3, 4, 10, 11, 12});
  expect_tensor(ops::concat({a, c, a}, -1), F32, {2, 7}, {1, 2, 7, 8, 9, 1, 2, 3, 4, 10, 11, 12, 3, 4});
  expect_tensor(ops::concat({a}, 0), F32, {2, 2}, {1, 2, 3, 4});
  // Non-contiguous pieces and an empty piece.
  expect_tensor(ops::concat({ops::transpose(a, 0, 1), ops::zeros({0, 2})}, 0), F32, {2, 2}, {1, 3, 2, 4});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::concat({a, c}, 0); }, {"concat", "[2, 3]", "[2, 2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::concat({a, ops::zeros({2, 2}, F64)}, 0); }, {"concat", "float64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::concat({}, 0); }, {"concat"});
}

TEST(OpsJoin, Stack) {
  Tensor a = f32({1, 2, 3}, {3});
  Tensor b = f32({4, 5, 6}, {3});
  expect_tensor(ops::stack({a, b}), F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor(ops::stack({a, b}, 1), F32, {3, 2}, {1, 4, 2, 5, 3, 6});
  expect_tensor(ops::stack({a, b}, -1), F32, {3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor m = iota({2, 2});
  expect_tensor(ops::stack({m, m}, 1), F32, {2, 2, 2}, {0, 1, 0, 1, 2, 3, 2, 3});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::stack({a, f32({1, 2}, {2})}); }, {"stack", "[2]", "[3]"});
}

TEST(OpsJoin, SplitAndChunk) {
  Tensor x = iota({5, 2});
  std::vector<Tensor> p = ops::split(x, 2);
  ASSERT_EQ(p.size(), 3u);
  expect_tensor(p[0], F32, {2, 2}, {0, 1, 2, 3});
  expect_tensor(p[1], F32, {2, 2}, {4, 5, 6, 7});
  expect_tensor(p[2], F32, {1, 2}, {8, 9});
  EXPECT_EQ(p[1].storage(), x.storage()) << "pieces are views";

  std::vector<Tensor> q = ops::split(x, std::vector<int64_t>{1, 0, 4}, 0);
  ASSERT_EQ(q.size(), 3u);
  expect_tensor(q[0], F32, {1, 2}, {0, 1});
  expect_tensor(q[1], F32, {0, 2}, {});
  expect_tensor(q[2], F32, {4, 2}, {2, 3, 4, 5, 6, 7, 8, 9});
  std::vector<Tensor> cols = ops::split(x, 1, -1);
  ASSERT_EQ(cols.size(), 2u);
  expect_tensor(cols[1], F32, {5, 1}, {1, 3, 5, 7, 9});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::split(x, std::vector<int64_t>{2, 2}, 0); }, {"split", "[5, 2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::split(x, 0); }, {"split"});

  // chunk follows torch: pieces of ceil(n / chunks).
  Tensor y = iota({7});
  std::vector<Tensor> c = ops::chunk(y, 3);
  ASSERT_EQ(c.size(), 3u);
  expect_tensor(c[0], F32, {3}, {0, 1, 2});
  expect_tensor(c[1], F32, {3}, {3, 4, 5});
  expect_tensor(c[2], F32, {1}, {6});
  EXPECT_EQ(ops::chunk(iota({6}), 4).size(), 3u);  // ceil(6/4) = 2 -> three chunks of 2
  EXPECT_EQ(ops::chunk(iota({2}), 5).size(), 2u);
  std::vector<Tensor> halves = ops::chunk(iota({2, 4}), 2, 1);
  expect_tensor(halves[1], F32, {2, 2}, {2, 3, 6, 7});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::chunk(y, 0); }, {"chunk"});
}

// =============================================================================================
// indexing
// =============================================================================================

TEST(OpsIndex, IndexSelect) {
  Tensor x = iota({3, 4});
  expect_tensor(ops::index_select(x, 0, i64({2, 0, 2}, {3})), F32, {3, 4}, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  expect_tensor(ops::index_select(x, 1, i64({3, 1}, {2})), F32, {3, 2}, {3, 1, 7, 5, 11, 9});
  expect_tensor(ops::index_select(x, -1, ops::from_vector(std::vector<int32_t>{0})), F32, {3, 1}, {0, 4, 8});
  expect_tensor(ops::index_select(x, 0, i64({}, {0})), F32, {0, 4}, {});
  expect_tensor(ops::index_select(ops::transpose(x, 0, 1), 0, i64({1}, {1})), F32, {1, 3}, {1, 5, 9});
  expect_tensor(ops::index_select(i64({10, 20, 30}, {3}), 0, i64({2, 2, 0}, {3})), I64, {3}, {30, 30, 10});
  EXPECT_ERROR(std::out_of_range, [&] { ops::index_select(x, 0, i64({0, 7}, {2})); }, {"index_select", "index 7"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::index_select(x, 0, i64({-1}, {1})); }, {"index_select", "index -1"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::index_select(x, 0, i64({0, 1}, {1, 2})); }, {"index_select", "[1, 2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::index_select(x, 0, f32({0}, {1})); }, {"index_select", "float32"});
}

TEST(OpsIndex, Gather) {
  // torch.gather's documentation example: [[1, 2], [3, 4]] gathered along axis 1 by [[0, 0], [1, 0]].
  Tensor x = f32({1, 2, 3, 4}, {2, 2});
  expect_tensor(ops::gather(x, 1, i64({0, 0, 1, 0}, {2, 2})), F32, {2, 2}, {1, 1, 4, 3});
  // Along axis 0: out[i][j] = x[index[i][j]][j].
  Tensor y = iota({3, 3});
  expect_tensor(ops::gather(y, 0, i64({2, 0, 1, 1, 1, 2}, {2, 3})), F32, {2, 3}, {6, 1, 5, 3, 4, 8});
  // An index smaller than x along the other axis: only the first rows are used.
  expect_tensor(ops::gather(y, 1, i64({2, 0}, {2, 1})), F32, {2, 1}, {2, 3});
  // Picking one class score per row (what cross-entropy does).
  expect_tensor(ops::gather(y, -1, i64({1, 2, 0}, {3, 1})), F32, {3, 1}, {1, 5, 6});
  EXPECT_ERROR(std::out_of_range, [&] { ops::gather(y, 1, i64({3}, {1, 1})); }, {"gather", "index 3"});
  // AlreadyChecked skips only the bounds check: the same values, and shape and dtype are still checked.
  const ops::IndexCheck vouched = ops::IndexCheck::AlreadyChecked;
  expect_tensor(ops::gather(y, 0, i64({2, 0, 1, 1, 1, 2}, {2, 3}), vouched), F32, {2, 3}, {6, 1, 5, 3, 4, 8});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::gather(y, 1, i64({0, 0}, {2}), vouched); }, {"gather", "[2]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::gather(y, 1, f32({0}, {1, 1}), vouched); }, {"gather", "float32"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::gather(y, 1, i64({0, 0}, {2})); }, {"gather", "[2]", "[3, 3]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::gather(y, 1, i64({0, 0, 0, 0}, {4, 1})); }, {"gather", "[4, 1]"});
}

TEST(OpsIndex, ScatterAdd) {
  Tensor x = ops::zeros({3, 5});
  Tensor index = i64({0, 1, 2, 0, 0, 2, 0, 0, 1, 2}, {2, 5});
  Tensor src = ops::ones({2, 5});
  // out[index[i][j]][j] += src[i][j]
  expect_tensor(ops::scatter_add(x, 0, index, src), F32, {3, 5}, {1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
  expect_tensor(x, F32, {3, 5}, std::vector<double>(15, 0.0));  // x itself is unchanged
  // Repeated indices accumulate, and the result starts from x.
  Tensor base = f32({10, 20, 30}, {3});
  expect_tensor(ops::scatter_add(base, 0, i64({1, 1, 1, 2}, {4}), f32({1, 2, 3, 4}, {4})), F32, {3}, {10, 26, 34});
  // Along axis 1 with a src narrower than x.
  expect_tensor(ops::scatter_add(ops::zeros({2, 4}), 1, i64({3, 3, 0, 1}, {2, 2}), f32({1, 2, 3, 4}, {2, 2})), F32,
                {2, 4}, {0, 0, 0, 3, 3, 4, 0, 0});
  expect_tensor(ops::scatter_add(ops::zeros({3}, I64), 0, i64({0, 0}, {2}), i64({5, 6}, {2})), I64, {3}, {11, 0, 0});
  EXPECT_ERROR(std::out_of_range, [&] { ops::scatter_add(x, 0, i64({3, 0, 0, 0, 0}, {1, 5}), ops::ones({1, 5})); },
                                  {"scatter_add", "index 3"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::scatter_add(x, 0, index, ops::ones({2, 4})); },
                                      {"scatter_add", "[2, 4]", "[2, 5]"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::scatter_add(x, 0, index, ops::ones({2, 5}, F64)); },
                                      {"scatter_add", "float64"});
}

TEST(OpsEmpty, EmptyTensorsFlowThrough) {
  // Zero-size axes are legal everywhere: every op returns the right (empty) shape without touching memory.
  Tensor e = ops::zeros({0, 4});
  expect_tensor(ops::binary(BinaryOp::Add, e, ops::ones({4})), F32, {0, 4}, {});
  expect_tensor(ops::unary(UnaryOp::Exp, e), F32, {0, 4}, {});
  expect_tensor(ops::transpose(e, 0, 1), F32, {4, 0}, {});
  expect_tensor(ops::contiguous(ops::transpose(e, 0, 1)), F32, {4, 0}, {});
  expect_tensor(ops::matmul(e, ops::ones({4, 2})), F32, {0, 2}, {});
  expect_tensor(ops::softmax(e, -1), F32, {0, 4}, {});
  expect_tensor(ops::layer_norm(e, Tensor(), Tensor()).out, F32, {0, 4}, {});
  expect_tensor(ops::sum(e, {0}), F32, {4}, {0, 0, 0, 0});
  expect_tensor(ops::sum(e, {1}), F32, {0}, {});
  expect_tensor(ops::max(e, {1}), F32, {0}, {});  // nothing to reduce over is fine when no row exists
  expect_tensor(ops::concat({e, ops::ones({1, 4})}, 0), F32, {1, 4}, {1, 1, 1, 1});
  expect_tensor(ops::index_select(e, 1, i64({3, 0}, {2})), F32, {0, 2}, {});
  EXPECT_TRUE(std::isnan(ops::mean(ops::zeros({0})).item()));  // 0 / 0, as torch
}

TEST(OpsIndex, StridedIndexAndSource) {
  Tensor x = iota({3, 4});
  Tensor it = ops::transpose(i64({0, 1, 2, 3, 3, 2}, {2, 3}), 0, 1);  // [[0, 3], [1, 3], [2, 2]], not contiguous
  expect_tensor(ops::gather(x, 1, it), F32, {3, 2}, {0, 3, 5, 7, 10, 10});
  Tensor every_other = ops::slice(i64({3, 0, 1, 0, 2, 0}, {6}), 0, 0, 6, 2);  // [3, 1, 2] with stride 2
  expect_tensor(ops::index_select(x, 1, every_other), F32, {3, 3}, {3, 1, 2, 7, 5, 6, 11, 9, 10});
  Tensor src = ops::transpose(iota({2, 3}), 0, 1);  // [[0, 3], [1, 4], [2, 5]]
  expect_tensor(ops::scatter_add(ops::zeros({3, 4}), 1, it, src), F32, {3, 4}, {0, 0, 0, 3, 0, 1, 0, 4, 0, 0, 7, 0});
}

// =============================================================================================
// error messages: the exception type, the op, and what it was given
// =============================================================================================

TEST(OpsErrors, ShapeMismatches) {
  EXPECT_ERROR(std::invalid_argument, [] { ops::matmul(ops::zeros({4, 3}), ops::zeros({5, 2})); },
                                      {"matmul", "[4, 3]", "[5, 2]"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::matmul(ops::zeros({2, 2, 3}), ops::zeros({3, 3, 2})); },
                                      {"matmul", "cannot broadcast"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::matmul(ops::scalar(1), ops::zeros({2})); }, {"matmul", "[]"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::binary(BinaryOp::Add, ops::zeros({2, 3}), ops::zeros({4})); },
                                      {"add", "cannot broadcast", "[2, 3]", "[4]"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::binary(BinaryOp::Mul, ops::zeros({3, 2}), ops::zeros({2, 3})); },
                                      {"mul", "cannot broadcast", "[3, 2]", "[2, 3]"});
  EXPECT_ERROR(std::invalid_argument, 
      [] { ops::where(boolean({true, false, true}, {3}), ops::zeros({2}), ops::zeros({2})); },
      {"where", "cannot broadcast"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::permute(ops::zeros({2, 3}), {0}); }, {"permute", "[2, 3]"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::permute(ops::zeros({2, 3}), {1, 1}); }, {"permute", "repeat"});
  EXPECT_ERROR(std::invalid_argument, 
      [] { ops::layer_norm(ops::zeros({2, 3}), ops::zeros({4}), Tensor()); }, {"layer_norm", "[4]"});
}

TEST(OpsErrors, AxesOutOfRange) {
  Tensor x = ops::zeros({2, 3});
  EXPECT_ERROR(std::out_of_range, [&] { ops::sum(x, {5}); }, {"sum", "axis 5"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::sum(x, {-3}); }, {"sum", "axis -3"});
  EXPECT_ERROR(std::invalid_argument, [&] { ops::sum(x, {1, -1}); }, {"sum", "repeat"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::max(x, {2}); }, {"max", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::mean(x, {2}); }, {"mean", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::var(x, {2}); }, {"var", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::softmax(x, 2); }, {"softmax", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::log_softmax(x, -3); }, {"log_softmax", "axis -3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::logsumexp(x, {4}); }, {"logsumexp", "axis 4"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::transpose(x, 0, 2); }, {"transpose", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::narrow(x, 3, 0, 1); }, {"narrow", "axis 3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::select(x, 2, 0); }, {"select", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::concat({x, x}, 2); }, {"concat", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::stack({x, x}, 3); }, {"stack", "axis 3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::index_select(x, 2, i64({0}, {1})); }, {"index_select", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::gather(x, -3, i64({0}, {1, 1})); }, {"gather", "axis -3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::squeeze(x, 2); }, {"squeeze", "axis 2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::argmin(x, -3); }, {"argmin", "axis -3"});
}

TEST(OpsErrors, IndicesOutOfRange) {
  Tensor x = ops::zeros({3});
  EXPECT_ERROR(std::out_of_range, [&] { ops::index_select(x, 0, i64({7}, {1})); }, {"index_select", "index 7"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::gather(x, 0, i64({-2}, {1})); }, {"gather", "index -2"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::scatter_add(x, 0, i64({3}, {1}), ops::ones({1})); },
                                  {"scatter_add", "index 3"});
  EXPECT_ERROR(std::out_of_range, [&] { ops::select(x, 0, 3); }, {"select", "index 3"});
}

TEST(OpsErrors, WrongDtypes) {
  EXPECT_ERROR(std::invalid_argument, [] { ops::unary(UnaryOp::Exp, ops::zeros({2}, I64)); }, {"exp", "int64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::unary(UnaryOp::Log, ops::zeros({2}, DType::Int32)); },
                                      {"log", "int32"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::unary(UnaryOp::Neg, ops::zeros({2}, DType::Bool)); },
                                      {"neg", "bool"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::unary(UnaryOp::LogicalNot, ops::zeros({2})); },
                                      {"logical_not", "float32"});
  EXPECT_ERROR(std::invalid_argument, 
      [] { ops::binary(BinaryOp::Add, ops::zeros({2}, F32), ops::zeros({2}, F64)); },
      {"add", "dtypes differ", "float32", "float64"});
  EXPECT_ERROR(std::invalid_argument, 
      [] { ops::binary(BinaryOp::Add, ops::zeros({2}, DType::Bool), ops::zeros({2}, DType::Bool)); }, {"add", "bool"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::matmul(ops::zeros({2, 2}), ops::zeros({2, 2}, F64)); },
                                      {"matmul", "float32", "float64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::matmul(ops::zeros({2, 2}, DType::Bool), ops::zeros({2, 2}, DType::Bool)); },
                                      {"matmul", "bool"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::softmax(ops::zeros({2}, I64)); }, {"softmax", "int64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::logsumexp(ops::zeros({2}, I64), {0}); }, {"logsumexp", "int64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::layer_norm(ops::zeros({2}, I64), Tensor(), Tensor()); },
                                      {"layer_norm", "int64"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::where(ops::zeros({2}), ops::zeros({2}), ops::zeros({2})); },
                                      {"where", "bool", "float32"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::where(boolean({true}, {1}), ops::zeros({2}), ops::zeros({2}, F64)); },
                                      {"where", "dtypes differ"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::gather(ops::zeros({2}), 0, ops::zeros({1})); }, {"gather", "float32"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::sum(ops::zeros({2}, DType::Bool)); }, {"sum", "bool"});
  EXPECT_ERROR(std::invalid_argument, [] { ops::zeros({2}).data<double>(); }, {"float64", "float32"});
}
