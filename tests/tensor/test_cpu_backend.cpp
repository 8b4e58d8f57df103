// The CPU backend, called directly (no ops layer): every primitive on small hand-computed cases, on
// strided and broadcast (stride-0) views, and against naive float64 references.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/random.h"

using namespace glance;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

CpuBackend& be() {
  static CpuBackend backend;
  return backend;
}

template <typename T>
Tensor make(const std::vector<T>& values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

// 0, 1, 2, ... scaled, as a contiguous tensor.
template <typename T>
Tensor ramp(const Shape& shape, double scale = 1.0, double shift = 0.0) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(shift + scale * double(i));
  return t;
}

// Pseudo-random but fixed values in [-1, 1) (a tiny LCG, so tests never depend on random.cpp).
template <typename T>
Tensor noise(const Shape& shape, uint32_t seed = 1) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  uint32_t s = seed;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<T>(double(s >> 8) / double(1 << 24) * 2.0 - 1.0);
  }
  return t;
}

// The transpose of a contiguous 2-D tensor, as a view.
Tensor transposed(const Tensor& t) {
  return t.as_strided({t.shape()[1], t.shape()[0]}, {t.strides()[1], t.strides()[0]}, t.offset());
}

template <typename T>
std::vector<double> as_double(const Tensor& t) {
  std::vector<T> v = t.to_vector<T>();
  return std::vector<double>(v.begin(), v.end());
}

// Sum / max / min over `axes` by the definition, in double, in keepdim row-major order.
std::vector<double> naive_reduce(ReduceOp op, const std::vector<double>& x, const Shape& shape,
                                 const std::vector<int64_t>& axes) {
  Shape out_shape = shape;
  for (int64_t a : axes) out_shape[a] = 1;
  double init = op == ReduceOp::Sum ? 0.0 : (op == ReduceOp::Max ? -kInf : kInf);
  std::vector<double> out(static_cast<size_t>(numel_of(out_shape)), init);
  Strides out_strides = contiguous_strides(out_shape);
  for (size_t lin = 0; lin < x.size(); ++lin) {
    int64_t rest = static_cast<int64_t>(lin), o = 0;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      int64_t i = rest % shape[d];
      rest /= shape[d];
      if (out_shape[d] != 1) o += i * out_strides[d];
    }
    double& acc = out[o];
    if (op == ReduceOp::Sum) acc += x[lin];
    else if (std::isnan(x[lin]) || std::isnan(acc)) acc = kNaN;
    else acc = op == ReduceOp::Max ? std::max(acc, x[lin]) : std::min(acc, x[lin]);
  }
  return out;
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double rel, double abs = 0) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "at " << i;
    } else {
      EXPECT_NEAR(got[i], want[i], abs + rel * std::abs(want[i])) << "at " << i;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------- memory

TEST(CpuBackendMemory, AllocatesAlignedAndCopies) {
  for (size_t n : {size_t(0), size_t(1), size_t(100), size_t(4096)}) {
    void* p = be().allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    be().deallocate(p, n);
  }
  std::vector<float> host = {1, 2, 3}, back(3);
  void* dev = be().allocate(12);
  be().copy_from_host(dev, host.data(), 12);
  be().copy_to_host(back.data(), dev, 12);
  be().deallocate(dev, 12);
  EXPECT_EQ(back, host);
  EXPECT_NE(cpu_backend_instance(), nullptr);
  EXPECT_EQ(cpu_backend_instance(), cpu_backend_instance());
}

// ----------------------------------------------------------------------------------------- strided loop

TEST(CpuBackendStridedLoop, CoalescesContiguousAxesAndDropsOnes) {
  auto l = cpu::coalesce<1>({64, 128, 32}, {contiguous_strides({64, 128, 32})});
  EXPECT_EQ(l.shape, (Shape{262144}));
  // A transposed [3, 4] cannot merge; a size-1 axis disappears.
  auto t = cpu::coalesce<2>({4, 1, 3}, {Strides{1, 99, 4}, Strides{3, 3, 1}});
  EXPECT_EQ(t.shape, (Shape{4, 3}));
  EXPECT_EQ(t.strides[0], (Strides{1, 4}));
  // Stride-0 axes merge with each other.
  auto b = cpu::coalesce<2>({5, 6}, {Strides{6, 1}, Strides{0, 0}});
  EXPECT_EQ(b.shape, (Shape{30}));
  // A scalar is one row of one element.
  auto s = cpu::coalesce<1>({}, {Strides{}});
  EXPECT_EQ(s.shape, (Shape{1}));
}

// ------------------------------------------------------------------------------------------ fill, copy

TEST(CpuBackendElementwise, FillStridedViewLeavesTheRest) {
  Tensor base = make<float>({0, 0, 0, 0, 0, 0}, {2, 3});
  Tensor column = base.as_strided({2}, {3}, 1);  // base[:, 1]
  be().fill(column, 7.5);
  EXPECT_EQ(base.to_vector<float>(), (std::vector<float>{0, 7.5, 0, 0, 7.5, 0}));
  Tensor scalar = Tensor::empty({}, DType::Int64);
  be().fill(scalar, 3);
  EXPECT_EQ(scalar.item(), 3);
  Tensor mask = Tensor::empty({3}, DType::Bool);
  be().fill(mask, 0.25);  // nonzero -> true
  EXPECT_EQ(mask.to_vector<bool>(), (std::vector<bool>{true, true, true}));
}

TEST(CpuBackendElementwise, CopyConvertsBetweenDtypes) {
  Tensor f = make<float>({2.7f, -2.7f, 0.0f, 0.5f, float(kNaN)}, {5});
  Tensor i32 = Tensor::empty({4}, DType::Int32);
  be().copy(i32, f.as_strided({4}, {1}, 0));
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{2, -2, 0, 0}));  // truncation toward zero
  Tensor b = Tensor::empty({5}, DType::Bool);
  be().copy(b, f);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, true, false, true, true}));  // NaN != 0
  Tensor back = Tensor::empty({5}, DType::Float64);
  be().copy(back, b);
  EXPECT_EQ(back.to_vector<double>(), (std::vector<double>{1, 1, 0, 1, 1}));
  Tensor u8 = make<uint8_t>({0, 200, 255}, {3});
  Tensor i64 = Tensor::empty({3}, DType::Int64);
  be().copy(i64, u8);
  EXPECT_EQ(i64.to_vector<int64_t>(), (std::vector<int64_t>{0, 200, 255}));
  Tensor d = Tensor::empty({3}, DType::Float64);
  be().copy(d, i64);
  Tensor f2 = Tensor::empty({3}, DType::Float32);
  be().copy(f2, d);
  EXPECT_EQ(f2.to_vector<float>(), (std::vector<float>{0, 200, 255}));
  Tensor u8b = Tensor::empty({3}, DType::UInt8);
  be().copy(u8b, make<int32_t>({1, 17, 250}, {3}));
  EXPECT_EQ(u8b.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 17, 250}));
}

TEST(CpuBackendElementwise, CopyTransposedAndBroadcastViews) {
  // Large enough to run in parallel: out = transpose(in), in [600, 400].
  static_assert(600 * 400 >= cpu::kParallelThreshold, "the parallel path");
  Tensor in = ramp<float>({600, 400});
  Tensor out = Tensor::empty({400, 600});
  be().copy(out, transposed(in));
  const float* o = out.data<float>();
  for (int64_t i = 0; i < 400; ++i)
    for (int64_t j = 0; j < 600; ++j) ASSERT_EQ(o[i * 600 + j], float(j * 400 + i));
  // Broadcast a row [3] to [2, 3] with a stride-0 axis.
  Tensor row = make<double>({1, 2, 3}, {3});
  Tensor grid = Tensor::empty({2, 3}, DType::Float64);
  be().copy(grid, row.as_strided({2, 3}, {0, 1}, 0));
  EXPECT_EQ(grid.to_vector<double>(), (std::vector<double>{1, 2, 3, 1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------- unary

namespace {
template <typename T>
void check_unary(UnaryOp op, double (*ref)(double), double rel) {
  std::vector<T> xs = {T(-3.5), T(-1), T(-0.25), T(0), T(0.3), T(1), T(2.5), T(7)};
  Tensor in = make<T>(xs, {8});
  Tensor out = Tensor::empty({8}, dtype_of<T>::value);
  be().unary(op, out, in);
  std::vector<T> got = out.template to_vector<T>();
  for (size_t i = 0; i < xs.size(); ++i) {
    double want = ref(double(xs[i]));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(double(got[i]))) << "x = " << xs[i];
    } else if (std::isinf(want)) {
      EXPECT_EQ(double(got[i]), want) << "op " << int(op) << " x = " << xs[i];
    } else {
      EXPECT_NEAR(double(got[i]), want, rel * (1 + std::abs(want))) << "op " << int(op) << " x = " << xs[i];
    }
  }
}

double gelu_tanh_ref(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
double gelu_erf_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
}  // namespace

TEST(CpuBackendElementwise, UnaryFloatOpsMatchStdMath) {
  struct Case { UnaryOp op; double (*ref)(double); };
  std::vector<Case> cases = {
      {UnaryOp::Neg, [](double x) { return -x; }},
      {UnaryOp::Exp, [](double x) { return std::exp(x); }},
      {UnaryOp::Log, [](double x) { return std::log(x); }},
      {UnaryOp::Sqrt, [](double x) { return std::sqrt(x); }},
      {UnaryOp::Rsqrt, [](double x) { return 1 / std::sqrt(x); }},
      {UnaryOp::Abs, [](double x) { return std::abs(x); }},
      {UnaryOp::Tanh, [](double x) { return std::tanh(x); }},
      {UnaryOp::Sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {UnaryOp::Relu, [](double x) { return std::max(x, 0.0); }},
      {UnaryOp::GeluTanh, gelu_tanh_ref},
      {UnaryOp::GeluErf, gelu_erf_ref},
      {UnaryOp::Sin, [](double x) { return std::sin(x); }},
      {UnaryOp::Cos, [](double x) { return std::cos(x); }},
      {UnaryOp::Sign, [](double x) { return double((x > 0) - (x < 0)); }},
  };
  for (const Case& c : cases) {
    check_unary<float>(c.op, c.ref, 2e-6);
    check_unary<double>(c.op, c.ref, 1e-14);
  }
}

TEST(CpuBackendElementwise, GeluAndSigmoidKnownValues) {
  Tensor x = make<double>({1.0, -1000.0, 1000.0, -20.0}, {4});
  Tensor out = Tensor::empty({4}, DType::Float64);
  be().unary(UnaryOp::GeluErf, out, x);
  EXPECT_NEAR(out.to_vector<double>()[0], 0.8413447460685429, 1e-15);
  be().unary(UnaryOp::GeluTanh, out, x);
  EXPECT_NEAR(out.to_vector<double>()[0], 0.8411919906082768, 1e-15);
  be().unary(UnaryOp::Sigmoid, out, x);
  std::vector<double> s = out.to_vector<double>();
  EXPECT_EQ(s[1], 0.0);  // exp(1000) would overflow in the naive formula; here no NaN
  EXPECT_EQ(s[2], 1.0);
  EXPECT_NEAR(s[3], 2.061153618190204e-09, 1e-22);  // relative accuracy kept for large negative x
  Tensor xf = make<float>({-100.0f, 100.0f}, {2});
  Tensor of = Tensor::empty({2});
  be().unary(UnaryOp::Sigmoid, of, xf);
  std::vector<float> sf = of.to_vector<float>();
  EXPECT_NEAR(sf[0], 3.720076e-44, 1e-45);  // exp(-100): a float denormal, not 0 or NaN
  EXPECT_EQ(sf[1], 1.0f);
}

TEST(CpuBackendElementwise, UnaryIntegerAndBoolOps) {
  Tensor x = make<int32_t>({-5, 0, 7}, {3});
  Tensor out = Tensor::empty({3}, DType::Int32);
  be().unary(UnaryOp::Neg, out, x);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{5, 0, -7}));
  be().unary(UnaryOp::Abs, out, x);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{5, 0, 7}));
  be().unary(UnaryOp::Sign, out, x);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{-1, 0, 1}));
  be().unary(UnaryOp::Relu, out, x);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 7}));
  Tensor y = make<int64_t>({-3, 4}, {2});
  Tensor out64 = Tensor::empty({2}, DType::Int64);
  be().unary(UnaryOp::Abs, out64, y);
  EXPECT_EQ(out64.to_vector<int64_t>(), (std::vector<int64_t>{3, 4}));
  Tensor m = make<bool>({true, false}, {2});
  Tensor nm = Tensor::empty({2}, DType::Bool);
  be().unary(UnaryOp::LogicalNot, nm, m);
  EXPECT_EQ(nm.to_vector<bool>(), (std::vector<bool>{false, true}));
  // NaN passes through relu and sign.
  Tensor n = make<float>({float(kNaN)}, {1});
  Tensor no = Tensor::empty({1});
  be().unary(UnaryOp::Relu, no, n);
  EXPECT_TRUE(std::isnan(no.to_vector<float>()[0]));
}

TEST(CpuBackendElementwise, UnaryOnTransposedView) {
  Tensor in = noise<float>({40, 30});
  Tensor out = Tensor::empty({30, 40});
  be().unary(UnaryOp::Exp, out, transposed(in));
  const float* x = in.data<float>();
  const float* o = out.data<float>();
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 40; ++j) ASSERT_FLOAT_EQ(o[i * 40 + j], std::exp(x[j * 30 + i]));
}

// --------------------------------------------------------------------------------------------- binary

TEST(CpuBackendElementwise, BinaryOpsMatchReference) {
  std::vector<double> av = {-2.5, -1, 0, 0.5, 3, 4}, bv = {1.5, -1, 2, 0.5, -2, 0.25};
  struct Case { BinaryOp op; double (*ref)(double, double); };
  std::vector<Case> cases = {
      {BinaryOp::Add, [](double a, double b) { return a + b; }},
      {BinaryOp::Sub, [](double a, double b) { return a - b; }},
      {BinaryOp::Mul, [](double a, double b) { return a * b; }},
      {BinaryOp::Div, [](double a, double b) { return a / b; }},
      {BinaryOp::Maximum, [](double a, double b) { return std::max(a, b); }},
      {BinaryOp::Minimum, [](double a, double b) { return std::min(a, b); }},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::Float32, DType::Float64}) {
      Tensor a = Tensor::empty({6}, dt), b = Tensor::empty({6}, dt), out = Tensor::empty({6}, dt);
      be().copy(a, make<double>(av, {6}));
      be().copy(b, make<double>(bv, {6}));
      be().binary(c.op, out, a, b, 0);
      Tensor outd = Tensor::empty({6}, DType::Float64);
      be().copy(outd, out);
      std::vector<double> got = outd.to_vector<double>();
      for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(got[i], c.ref(av[i], bv[i]), 1e-6) << int(c.op) << " " << i;
    }
  }
  // Pow on positive bases.
  Tensor pa = make<double>({2, 9, 0.5}, {3}), pb = make<double>({10, 0.5, -1}, {3}), po = Tensor::empty({3}, DType::Float64);
  be().binary(BinaryOp::Pow, po, pa, pb, 0);
  EXPECT_EQ(po.to_vector<double>(), (std::vector<double>{1024, 3, 2}));
}

TEST(CpuBackendElementwise, ComparisonsWriteBool) {
  Tensor a = make<float>({1, 2, 3, float(kNaN)}, {4}), b = make<float>({2, 2, 2, 2}, {4});
  Tensor out = Tensor::empty({4}, DType::Bool);
  auto run = [&](BinaryOp op) {
    be().binary(op, out, a, b, 0);
    return out.to_vector<bool>();
  };
  EXPECT_EQ(run(BinaryOp::Eq), (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(run(BinaryOp::Ne), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(run(BinaryOp::Lt), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(run(BinaryOp::Le), (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(run(BinaryOp::Gt), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(run(BinaryOp::Ge), (std::vector<bool>{false, true, true, false}));
  // Integer comparison with a scalar, and bool == bool.
  Tensor i = make<int64_t>({-1, 5, 9}, {3});
  Tensor o3 = Tensor::empty({3}, DType::Bool);
  be().binary(BinaryOp::Gt, o3, i, Tensor(), 4.0);
  EXPECT_EQ(o3.to_vector<bool>(), (std::vector<bool>{false, true, true}));
  Tensor m = make<bool>({true, false, true}, {3});
  be().binary(BinaryOp::Eq, o3, m, make<bool>({true, true, false}, {3}), 0);
  EXPECT_EQ(o3.to_vector<bool>(), (std::vector<bool>{true, false, false}));
}

TEST(CpuBackendElementwise, MaximumMinimumPropagateNaN) {
  Tensor a = make<double>({kNaN, 1, 2}, {3}), b = make<double>({0, kNaN, 1}, {3});
  Tensor out = Tensor::empty({3}, DType::Float64);
  for (BinaryOp op : {BinaryOp::Maximum, BinaryOp::Minimum}) {
    be().binary(op, out, a, b, 0);
    std::vector<double> v = out.to_vector<double>();
    EXPECT_TRUE(std::isnan(v[0]));
    EXPECT_TRUE(std::isnan(v[1]));
    EXPECT_EQ(v[2], op == BinaryOp::Maximum ? 2 : 1);
  }
}

TEST(CpuBackendElementwise, IntegerArithmetic) {
  Tensor a = make<int32_t>({7, -7, 7, 5, 2}, {5}), b = make<int32_t>({2, 2, -2, 0, 10}, {5});
  Tensor out = Tensor::empty({5}, DType::Int32);
  be().binary(BinaryOp::Div, out, a, b, 0);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{3, -3, -3, 0, 0}));  // truncation; x/0 = 0
  be().binary(BinaryOp::Pow, out, a, make<int32_t>({2, 3, 0, 1, 10}, {5}), 0);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{49, -343, 1, 5, 1024}));
  be().binary(BinaryOp::Maximum, out, a, b, 0);
  EXPECT_EQ(out.to_vector<int32_t>(), (std::vector<int32_t>{7, 2, 7, 5, 10}));
  Tensor x = make<int64_t>({1, 2, 3}, {3}), o64 = Tensor::empty({3}, DType::Int64);
  be().binary(BinaryOp::Mul, o64, x, Tensor(), 3.0);  // the scalar takes the tensor's dtype
  EXPECT_EQ(o64.to_vector<int64_t>(), (std::vector<int64_t>{3, 6, 9}));
  Tensor u = make<uint8_t>({250, 3}, {2}), ou = Tensor::empty({2}, DType::UInt8);
  be().binary(BinaryOp::Add, ou, u, make<uint8_t>({10, 4}, {2}), 0);
  EXPECT_EQ(ou.to_vector<uint8_t>(), (std::vector<uint8_t>{4, 7}));  // wraps like C++
}

TEST(CpuBackendElementwise, BinaryBroadcastStridedAndScalar) {
  // a: [4, 3] transposed view of [3, 4]; b: a row [3] broadcast with stride 0; out contiguous.
  Tensor base = ramp<float>({3, 4});
  Tensor a = transposed(base);  // a[i][j] = j*4 + i
  Tensor row = make<float>({10, 20, 30}, {3});
  Tensor b = row.as_strided({4, 3}, {0, 1}, 0);
  Tensor out = Tensor::empty({4, 3});
  be().binary(BinaryOp::Add, out, a, b, 0);
  std::vector<float> got = out.to_vector<float>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(got[i * 3 + j], float(j * 4 + i + 10 * (j + 1)));
  // A column broadcast on the left (a of stride 0 along the row).
  Tensor col = make<float>({1, 2, 3, 4}, {4});
  be().binary(BinaryOp::Sub, out, col.as_strided({4, 3}, {1, 0}, 0), b, 0);
  got = out.to_vector<float>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(got[i * 3 + j], float(i + 1 - 10 * (j + 1)));
  // Scalar b, large contiguous (parallel path), written in place (out aliases a).
  static_assert(400000 >= cpu::kParallelThreshold, "the parallel path");
  Tensor big = ramp<double>({400000});
  be().binary(BinaryOp::Mul, big, big, Tensor(), 0.5);
  const double* p = big.data<double>();
  for (int64_t i = 0; i < 400000; i += 997) ASSERT_EQ(p[i], 0.5 * double(i));
  // A 0-dim operand pair.
  Tensor s = make<double>({2}, {}), so = Tensor::empty({}, DType::Float64);
  be().binary(BinaryOp::Pow, so, s, Tensor(), 3);
  EXPECT_EQ(so.item(), 8);
}

TEST(CpuBackendElementwise, WhereWithBroadcastCondition) {
  Tensor cond = make<bool>({true, false, true}, {3});
  Tensor a = make<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = make<int64_t>({-1}, {1});
  Tensor out = Tensor::empty({2, 3}, DType::Int64);
  be().where(out, cond.as_strided({2, 3}, {0, 1}, 0), a, b.as_strided({2, 3}, {0, 0}, 0));
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{1, -1, 3, 4, -1, 6}));
}

// ------------------------------------------------------------------------------------------ reductions

namespace {
// Reduces `in` with the backend and compares with the naive double reference.
template <typename T>
void check_reduce(ReduceOp op, const Tensor& in, const std::vector<int64_t>& axes, double rel) {
  Shape out_shape = in.shape();
  for (int64_t a : axes) out_shape[a] = 1;
  Tensor out = Tensor::empty(out_shape, in.dtype());
  be().reduce(op, out, in, axes);
  expect_near_all(as_double<T>(out), naive_reduce(op, as_double<T>(in), in.shape(), axes), rel, rel);
}
}  // namespace

TEST(CpuBackendReduce, ContiguousRunsPathA) {
  // Many outputs: the parallel path over outputs.
  static_assert(150 * 1000 >= cpu::kParallelThreshold, "the parallel path");
  check_reduce<float>(ReduceOp::Sum, noise<float>({150, 1000}), {1}, 1e-5);
  check_reduce<float>(ReduceOp::Max, noise<float>({150, 1000}), {1}, 0);
  check_reduce<double>(ReduceOp::Min, noise<double>({5, 7, 33}), {2}, 0);
  // Few outputs with long runs: the segmented parallel path. And a whole-tensor sum.
  check_reduce<float>(ReduceOp::Sum, noise<float>({3, 200001}), {1}, 1e-5);
  check_reduce<float>(ReduceOp::Sum, noise<float>({200, 1000}), {0, 1}, 1e-5);
  check_reduce<double>(ReduceOp::Sum, noise<double>({4, 5, 6}), {1, 2}, 1e-13);
  // Reducing nothing (a size-1 axis) is a copy.
  check_reduce<double>(ReduceOp::Sum, noise<double>({4, 1}), {1}, 0);
}

TEST(CpuBackendReduce, RowsIntoOutputsPathB) {
  // Each case is past the parallel threshold.
  static_assert(1200 * 130 >= cpu::kParallelThreshold && 16 * 300 * 32 >= cpu::kParallelThreshold &&
                    80 * 30 * 64 >= cpu::kParallelThreshold,
                "the parallel path");
  check_reduce<float>(ReduceOp::Sum, noise<float>({5000, 40}), {0}, 1e-5);
  check_reduce<float>(ReduceOp::Max, noise<float>({1200, 130}), {0}, 0);
  check_reduce<double>(ReduceOp::Sum, noise<double>({16, 300, 32}), {1}, 1e-13);  // kept axes on both sides
  check_reduce<float>(ReduceOp::Sum, noise<float>({100000, 16}), {0}, 1e-5);     // sliced rows
  check_reduce<float>(ReduceOp::Sum, noise<float>({80, 30, 64}), {0, 1}, 1e-5);
}

TEST(CpuBackendReduce, GeneralPathC) {
  // The transpose of [50, 60] summed over its last axis: the reduced elements are strided.
  Tensor base = noise<double>({50, 60});
  check_reduce<double>(ReduceOp::Sum, transposed(base), {1}, 1e-13);
  check_reduce<double>(ReduceOp::Max, transposed(base), {1}, 0);
  check_reduce<float>(ReduceOp::Sum, noise<float>({6, 7, 5}), {0, 2}, 1e-6);
  check_reduce<float>(ReduceOp::Min, noise<float>({6, 7, 5}), {0, 2}, 0);
  // A full reduction of a transposed view.
  check_reduce<double>(ReduceOp::Sum, transposed(base), {0, 1}, 1e-13);
}

TEST(CpuBackendReduce, IntegersNaNAndEmpty) {
  // int32 sums accumulate in int64: 2^30 + 2^30 overflows int32 midway, the final 2^30 fits.
  Tensor big = make<int32_t>({1 << 30, 1 << 30, -(1 << 30)}, {3});
  Tensor s = Tensor::empty({1}, DType::Int32);
  be().reduce(ReduceOp::Sum, s, big, {0});
  EXPECT_EQ(s.to_vector<int32_t>()[0], 1 << 30);
  Tensor i = make<int32_t>({1, -7, 3, 9, 2, 2}, {2, 3});
  Tensor o = Tensor::empty({2, 1}, DType::Int32);
  be().reduce(ReduceOp::Sum, o, i, {1});
  EXPECT_EQ(o.to_vector<int32_t>(), (std::vector<int32_t>{-3, 13}));
  be().reduce(ReduceOp::Min, o, i, {1});
  EXPECT_EQ(o.to_vector<int32_t>(), (std::vector<int32_t>{-7, 2}));
  // NaN propagates through max/min.
  Tensor n = make<float>({1, float(kNaN), 3, 4}, {2, 2});
  Tensor on = Tensor::empty({2, 1});
  be().reduce(ReduceOp::Max, on, n, {1});
  std::vector<float> v = on.to_vector<float>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 4);
  // The sum over an empty axis is 0; max over one throws.
  Tensor e = Tensor::empty({3, 0});
  Tensor oe = Tensor::empty({3, 1});
  be().reduce(ReduceOp::Sum, oe, e, {1});
  EXPECT_EQ(oe.to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_THROW(be().reduce(ReduceOp::Max, oe, e, {1}), std::invalid_argument);
}

TEST(CpuBackendReduce, ArgReduceTiesAndNaN) {
  Tensor x = make<float>({1, 5, 5, 0, 0, -2, 3, -2}, {2, 4});
  Tensor out = Tensor::empty({2, 1}, DType::Int64);
  be().arg_reduce(true, out, x, 1);
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));  // first of the tied maxima
  be().arg_reduce(false, out, x, 1);
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
  Tensor out0 = Tensor::empty({1, 4}, DType::Int64);
  be().arg_reduce(true, out0, x, 0);  // along a strided axis
  EXPECT_EQ(out0.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0}));
  Tensor n = make<double>({1, kNaN, 7, kNaN}, {4});
  Tensor o1 = Tensor::empty({1}, DType::Int64);
  be().arg_reduce(true, o1, n, 0);
  EXPECT_EQ(o1.to_vector<int64_t>()[0], 1);  // NaN counts as the maximum
  be().arg_reduce(false, o1, n, 0);
  EXPECT_EQ(o1.to_vector<int64_t>()[0], 1);  // and, as in torch, also wins argmin
}

// -------------------------------------------------------------------------------------------- matmul

namespace {
// Naive double reference for out[b] = a[b] @ b[b] on any views.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  std::vector<double> av = as_double<float>(a), bv = as_double<float>(b);
  int64_t B = a.shape()[0], M = a.shape()[1], K = a.shape()[2], N = b.shape()[2];
  std::vector<double> out(static_cast<size_t>(B * M * N), 0.0);
  for (int64_t p = 0; p < B; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) out[(p * M + i) * N + j] += av[(p * M + i) * K + k] * bv[(p * K + k) * N + j];
  return out;
}

void check_matmul(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty({a.shape()[0], a.shape()[1], b.shape()[2]});
  be().matmul(out, a, b);
  expect_near_all(as_double<float>(out), naive_matmul(a, b), 1e-5, 1e-5);
}
}  // namespace

TEST(CpuBackendMatmul, HandComputed) {
  Tensor a = make<float>({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  Tensor b = make<float>({7, 8, 9, 10, 11, 12}, {1, 3, 2});
  Tensor out = Tensor::empty({1, 2, 2});
  be().matmul(out, a, b);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{58, 64, 139, 154}));
  Tensor ai = make<int64_t>({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  Tensor bi = make<int64_t>({7, 8, 9, 10, 11, 12}, {1, 3, 2});
  Tensor oi = Tensor::empty({1, 2, 2}, DType::Int64);
  be().matmul(oi, ai, bi);
  EXPECT_EQ(oi.to_vector<int64_t>(), (std::vector<int64_t>{58, 64, 139, 154}));
}

TEST(CpuBackendMatmul, TransposedBroadcastAndCopiedViews) {
  // a stored as [B, K, M] and viewed as [B, M, K] (row stride 1 -> the GEMM's transpose flag).
  Tensor a_store = noise<float>({3, 20, 17}, 3);
  Tensor a_t = a_store.as_strided({3, 17, 20}, {340, 1, 17}, 0);
  Tensor b = noise<float>({3, 20, 9}, 4);
  check_matmul(a_t, b);
  // b broadcast over the batch (batch stride 0) and transposed.
  Tensor b_store = noise<float>({9, 20}, 5);
  Tensor b_bt = b_store.as_strided({3, 20, 9}, {0, 1, 20}, 0);
  check_matmul(noise<float>({3, 17, 20}, 6), b_bt);
  // Every other column (column stride 2): neither layout fits, so the matrix is copied first.
  Tensor wide = noise<float>({2, 5, 16}, 7);
  Tensor a_s2 = wide.as_strided({2, 5, 8}, {80, 16, 2}, 1);
  check_matmul(a_s2, noise<float>({2, 8, 6}, 8));
  // Many small matrices: spread over threads one matrix each.
  static_assert(256 * 8 * 16 * 8 >= cpu::kParallelThreshold, "the parallel path");
  check_matmul(noise<float>({256, 8, 16}, 9), noise<float>({256, 16, 8}, 10));
  // Larger products whose batch shares out evenly (8 = a multiple of 1, 2, 4 or 8 threads): also whole
  // matrices per thread, each thread copying its own stride-2 operand into its own scratch buffer.
  Tensor wide_b = noise<float>({8, 70, 600}, 11);
  check_matmul(noise<float>({8, 65, 70}, 12), wide_b.as_strided({8, 70, 300}, {42000, 600, 2}, 1));
  // K = 0 gives zeros.
  Tensor a0 = Tensor::empty({2, 3, 0}), b0 = Tensor::empty({2, 0, 4});
  Tensor o0 = Tensor::empty({2, 3, 4});
  be().matmul(o0, a0, b0);
  for (float v : o0.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

// ---------------------------------------------------------------------------------------------- rows

TEST(CpuBackendRows, SoftmaxHandValuesAndStability) {
  Tensor x = make<float>({1, 2, 3, 1000, 1000, -std::numeric_limits<float>::infinity()}, {2, 3});
  Tensor out = Tensor::empty({2, 3});
  be().softmax(out, x, false);
  std::vector<float> v = out.to_vector<float>();
  EXPECT_NEAR(v[0], 0.09003057317038046, 1e-7);
  EXPECT_NEAR(v[1], 0.24472847105479764, 1e-7);
  EXPECT_NEAR(v[2], 0.6652409557748219, 1e-7);
  EXPECT_FLOAT_EQ(v[3], 0.5f);  // 1000 would overflow exp without the max shift
  EXPECT_FLOAT_EQ(v[4], 0.5f);
  EXPECT_EQ(v[5], 0.0f);
  be().softmax(out, x, true);
  v = out.to_vector<float>();
  EXPECT_NEAR(v[0], std::log(0.09003057317038046), 1e-6);
  EXPECT_NEAR(v[3], std::log(0.5), 1e-6);
  EXPECT_EQ(v[5], -std::numeric_limits<float>::infinity());
  // Many rows (parallel): each row sums to 1.
  static_assert(2000 * 129 >= cpu::kParallelThreshold, "the parallel path");
  Tensor big = noise<double>({2000, 129});
  Tensor ob = Tensor::empty({2000, 129}, DType::Float64);
  be().softmax(ob, big, false);
  const double* p = ob.data<double>();
  for (int r = 0; r < 2000; ++r) {
    double s = 0;
    for (int j = 0; j < 129; ++j) s += p[r * 129 + j];
    ASSERT_NEAR(s, 1.0, 1e-12);
  }
}

namespace {
// LayerNorm forward in double, by the definition.
void naive_layer_norm(const std::vector<double>& x, int64_t rows, int64_t C, const std::vector<double>& w,
                      const std::vector<double>& b, double eps, std::vector<double>& out) {
  out.assign(x.size(), 0);
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < C; ++j) mu += x[r * C + j] / double(C);
    for (int64_t j = 0; j < C; ++j) var += (x[r * C + j] - mu) * (x[r * C + j] - mu) / double(C);
    for (int64_t j = 0; j < C; ++j) out[r * C + j] = (x[r * C + j] - mu) / std::sqrt(var + eps) * w[j] + b[j];
  }
}
}  // namespace

TEST(CpuBackendRows, LayerNormForwardMatchesDoubleReference) {
  const int64_t rows = 1200, C = 130;  // rows in parallel
  static_assert(1200 * 130 >= cpu::kParallelThreshold, "the parallel path");
  const double eps = 1e-5;
  Tensor x = noise<float>({rows, C}, 11), w = noise<float>({C}, 12), b = noise<float>({C}, 13);
  Tensor out = Tensor::empty({rows, C}), mean = Tensor::empty({rows}), rstd = Tensor::empty({rows});
  be().layer_norm_forward(out, mean, rstd, x, w, b, eps);
  std::vector<double> ref;
  naive_layer_norm(as_double<float>(x), rows, C, as_double<float>(w), as_double<float>(b), eps, ref);
  expect_near_all(as_double<float>(out), ref, 1e-5, 1e-5);
  // Without weight and bias: each row has mean 0 and (biased) variance var/(var+eps) ~ 1.
  Tensor plain = Tensor::empty({rows, C});
  be().layer_norm_forward(plain, mean, rstd, x, Tensor(), Tensor(), eps);
  const float* p = plain.data<float>();
  double s = 0;
  for (int64_t j = 0; j < C; ++j) s += p[j];
  EXPECT_NEAR(s / C, 0.0, 1e-6);
}

TEST(CpuBackendRows, LayerNormBackwardMatchesCentralDifferences) {
  // loss = sum(out * R) for fixed R, so dy = R. Check dx, dweight, dbias against central differences.
  const int64_t rows = 4, C = 7;
  const double eps = 1e-5, h = 1e-6;
  Tensor x = noise<double>({rows, C}, 21), w = noise<double>({C}, 22), b = noise<double>({C}, 23);
  Tensor R = noise<double>({rows, C}, 24);
  auto loss = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb) {
    Tensor out = Tensor::empty({rows, C}, DType::Float64), m = Tensor::empty({rows}, DType::Float64),
           s = Tensor::empty({rows}, DType::Float64);
    be().layer_norm_forward(out, m, s, xx, ww, bb, eps);
    double l = 0;
    for (int64_t i = 0; i < rows * C; ++i) l += out.data<double>()[i] * R.data<double>()[i];
    return l;
  };
  Tensor out = Tensor::empty({rows, C}, DType::Float64), mean = Tensor::empty({rows}, DType::Float64),
         rstd = Tensor::empty({rows}, DType::Float64);
  be().layer_norm_forward(out, mean, rstd, x, w, b, eps);
  Tensor dx = Tensor::empty({rows, C}, DType::Float64), dw = Tensor::empty({C}, DType::Float64),
         db = Tensor::empty({C}, DType::Float64);
  be().layer_norm_backward(dx, dw, db, R, x, mean, rstd, w);
  auto numeric = [&](const Tensor& t, int64_t i) {
    double* p = t.data<double>();
    const double keep = p[i];
    p[i] = keep + h;
    double up = loss(x, w, b);
    p[i] = keep - h;
    double down = loss(x, w, b);
    p[i] = keep;
    return (up - down) / (2 * h);
  };
  for (int64_t i = 0; i < rows * C; ++i) EXPECT_NEAR(dx.data<double>()[i], numeric(x, i), 1e-7) << "dx " << i;
  for (int64_t j = 0; j < C; ++j) {
    EXPECT_NEAR(dw.data<double>()[j], numeric(w, j), 1e-7) << "dweight " << j;
    EXPECT_NEAR(db.data<double>()[j], numeric(b, j), 1e-7) << "dbias " << j;
  }
  // Without weight (no affine): dx only.
  be().layer_norm_backward(dx, Tensor(), Tensor(), R, x, mean, rstd, Tensor());
  Tensor ones = Tensor::empty({C}, DType::Float64);
  be().fill(ones, 1.0);
  Tensor dx1 = Tensor::empty({rows, C}, DType::Float64);
  be().layer_norm_backward(dx1, Tensor(), Tensor(), R, x, mean, rstd, ones);
  EXPECT_EQ(dx.to_vector<double>(), dx1.to_vector<double>());
}

TEST(CpuBackendRows, LayerNormBackwardFloatManyRows) {
  // float32, rows in parallel: compare with the float64 kernel on the same values.
  const int64_t rows = 2400, C = 100;
  static_assert(2400 * 100 >= cpu::kParallelThreshold, "the parallel path");
  Tensor xd = noise<double>({rows, C}, 31), dyd = noise<double>({rows, C}, 32);
  Tensor xf = Tensor::empty({rows, C}), dyf = Tensor::empty({rows, C});
  be().copy(xf, xd);
  be().copy(dyf, dyd);
  be().copy(xd, xf);  // make both see exactly the same values
  be().copy(dyd, dyf);
  auto run = [&](DType dt, const Tensor& x, const Tensor& dy) {
    Tensor out = Tensor::empty({rows, C}, dt), m = Tensor::empty({rows}, dt), s = Tensor::empty({rows}, dt);
    be().layer_norm_forward(out, m, s, x, Tensor(), Tensor(), 1e-5);
    Tensor dx = Tensor::empty({rows, C}, dt), dw = Tensor::empty({C}, dt), db = Tensor::empty({C}, dt);
    be().layer_norm_backward(dx, dw, db, dy, x, m, s, Tensor());
    Tensor dxd = Tensor::empty({rows, C}, DType::Float64), dwd = Tensor::empty({C}, DType::Float64);
    be().copy(dxd, dx);
    be().copy(dwd, dw);
    return std::make_pair(dxd.to_vector<double>(), dwd.to_vector<double>());
  };
  auto [dx64, dw64] = run(DType::Float64, xd, dyd);
  auto [dx32, dw32] = run(DType::Float32, xf, dyf);
  expect_near_all(dx32, dx64, 1e-4, 1e-5);
  expect_near_all(dw32, dw64, 1e-4, 1e-4);
}

// ------------------------------------------------------------------------------------------- indexing

TEST(CpuBackendIndexing, IndexSelect) {
  Tensor x = make<float>({0, 1, 2, 10, 11, 12, 20, 21, 22}, {3, 3});
  Tensor idx = make<int64_t>({2, 0, 2}, {3});
  Tensor rows = Tensor::empty({3, 3});
  be().index_select(rows, x, 0, idx);
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{20, 21, 22, 0, 1, 2, 20, 21, 22}));
  Tensor cols = Tensor::empty({3, 2});
  be().index_select(cols, x, 1, make<int64_t>({1, 0}, {2}));
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{1, 0, 11, 10, 21, 20}));
  // A transposed input and a strided index (every other element of [2, 9, 0, 9]).
  Tensor idx_store = make<int64_t>({2, 9, 0, 9}, {4});
  Tensor sel = Tensor::empty({2, 3});
  be().index_select(sel, transposed(x), 0, idx_store.as_strided({2}, {2}, 0));
  EXPECT_EQ(sel.to_vector<float>(), (std::vector<float>{2, 12, 22, 0, 10, 20}));
  // Many short rows (an embedding lookup): parallel over the indices.
  Tensor table = ramp<double>({50, 4});
  static_assert(80000 * 4 >= cpu::kParallelThreshold, "the parallel path");
  Tensor ids = Tensor::empty({80000}, DType::Int64);
  for (int64_t i = 0; i < 80000; ++i) ids.data<int64_t>()[i] = (i * 7) % 50;
  Tensor emb = Tensor::empty({80000, 4}, DType::Float64);
  be().index_select(emb, table, 0, ids);
  const double* e = emb.data<double>();
  for (int64_t i = 0; i < 80000; i += 101) ASSERT_EQ(e[i * 4 + 3], double(((i * 7) % 50) * 4 + 3));
}

TEST(CpuBackendIndexing, GatherAndScatterAdd) {
  Tensor x = make<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor idx = make<int64_t>({2, 0, 1, 1}, {2, 2});
  Tensor out = Tensor::empty({2, 2});
  be().gather(out, x, 1, idx);  // out[i][j] = x[i][idx[i][j]]
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{3, 1, 5, 5}));
  Tensor idx0 = make<int64_t>({1, 0, 1}, {1, 3});
  Tensor out0 = Tensor::empty({1, 3});
  be().gather(out0, x, 0, idx0);  // out[0][j] = x[idx[0][j]][j]
  EXPECT_EQ(out0.to_vector<float>(), (std::vector<float>{4, 2, 6}));
  // Gather from a transposed view: xt[i][j] = x[j][i], xt is [3, 2].
  Tensor outt = Tensor::empty({3, 1});
  be().gather(outt, transposed(x), 1, make<int64_t>({1, 0, 1}, {3, 1}));
  EXPECT_EQ(outt.to_vector<float>(), (std::vector<float>{4, 2, 6}));

  // scatter_add: acc[i][idx[i][j]] += src[i][j], repeated indices add up.
  Tensor acc = make<double>({0, 0, 0, 10, 10, 10}, {2, 3});
  Tensor src = make<double>({1, 2, 3, 4}, {2, 2});
  be().scatter_add(acc, 1, make<int64_t>({2, 2, 0, 1}, {2, 2}), src);
  EXPECT_EQ(acc.to_vector<double>(), (std::vector<double>{0, 0, 3, 13, 14, 10}));
  Tensor acc0 = make<int64_t>({0, 0, 0, 0}, {2, 2});
  be().scatter_add(acc0, 0, make<int64_t>({1, 1, 1, 0}, {2, 2}), make<int64_t>({5, 6, 7, 8}, {2, 2}));
  EXPECT_EQ(acc0.to_vector<int64_t>(), (std::vector<int64_t>{0, 8, 12, 6}));
}

// --------------------------------------------------------------------------------------------- random

TEST(CpuBackendRandom, PhiloxKnownAnswer) {
  // Random123's kat_vectors: philox4x32_10, counter (0, 0, 0, 0), key (0, 0).
  PhiloxBlock r = philox4x32_10(0, 0);
  EXPECT_EQ(r.x[0], 0x6627e8d5u);
  EXPECT_EQ(r.x[1], 0xe169c58du);
  EXPECT_EQ(r.x[2], 0xbc57ac4cu);
  EXPECT_EQ(r.x[3], 0x9b00dbd8u);
  // Different seeds and counters give different blocks.
  EXPECT_NE(philox4x32_10(1, 0).x[0], r.x[0]);
  EXPECT_NE(philox4x32_10(0, 1).x[0], r.x[0]);
  EXPECT_NE(philox4x32_10(uint64_t(1) << 32, 0).x[0], r.x[0]);
}

TEST(CpuBackendRandom, SameBitsForAnyThreadCount) {
  const int saved = omp_get_max_threads();
  for (RandomKind kind : {RandomKind::Uniform, RandomKind::Normal, RandomKind::Bernoulli}) {
    Tensor one = Tensor::empty({50001}), two = Tensor::empty({50001});
    omp_set_num_threads(1);
    be().random(kind, one, kind == RandomKind::Bernoulli ? 0.3 : 0.0, 1.0, {42, 7});
    omp_set_num_threads(2);
    be().random(kind, two, kind == RandomKind::Bernoulli ? 0.3 : 0.0, 1.0, {42, 7});
    EXPECT_EQ(one.to_vector<float>(), two.to_vector<float>());
  }
  omp_set_num_threads(saved);
  // Element i is block offset + i: a draw at offset 10 is the tail of a draw at offset 0.
  Tensor whole = Tensor::empty({30}, DType::Float64), tail = Tensor::empty({20}, DType::Float64);
  be().random(RandomKind::Normal, whole, 0, 1, {5, 0});
  be().random(RandomKind::Normal, tail, 0, 1, {5, 10});
  std::vector<double> w = whole.to_vector<double>(), t = tail.to_vector<double>();
  EXPECT_EQ(std::vector<double>(w.begin() + 10, w.end()), t);
}

TEST(CpuBackendRandom, UniformNormalBernoulliStatistics) {
  const int64_t n = 100000;
  auto stats = [](const std::vector<double>& v) {
    double m = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()), var = 0;
    for (double x : v) var += (x - m) * (x - m) / double(v.size());
    return std::make_pair(m, var);
  };
  // Uniform [-1, 3): mean 1, variance 16/12; every value inside the range.
  Tensor u = Tensor::empty({n});
  be().random(RandomKind::Uniform, u, -1, 3, {123, 0});
  std::vector<double> uv = as_double<float>(u);
  auto [um, uvar] = stats(uv);
  EXPECT_NEAR(um, 1.0, 0.02);
  EXPECT_NEAR(uvar, 16.0 / 12.0, 0.02);
  for (double x : uv) ASSERT_TRUE(x >= -1 && x < 3);
  Tensor u64 = Tensor::empty({n}, DType::Float64);
  be().random(RandomKind::Uniform, u64, 0, 1, {123, 0});
  auto [u64m, u64var] = stats(u64.to_vector<double>());
  EXPECT_NEAR(u64m, 0.5, 0.005);
  EXPECT_NEAR(u64var, 1.0 / 12.0, 0.002);
  // Normal(2, 0.5).
  Tensor g = Tensor::empty({n}, DType::Float64);
  be().random(RandomKind::Normal, g, 2, 0.5, {9, 1000});
  std::vector<double> gv = g.to_vector<double>();
  auto [gm, gvar] = stats(gv);
  EXPECT_NEAR(gm, 2.0, 0.01);
  EXPECT_NEAR(gvar, 0.25, 0.01);
  for (double x : gv) ASSERT_TRUE(std::isfinite(x));
  // Bernoulli(0.3) as bool and as float.
  Tensor bb = Tensor::empty({n}, DType::Bool);
  be().random(RandomKind::Bernoulli, bb, 0.3, 0, {77, 0});
  std::vector<bool> bv = bb.to_vector<bool>();
  double frac = double(std::count(bv.begin(), bv.end(), true)) / double(n);
  EXPECT_NEAR(frac, 0.3, 0.01);
  Tensor bf = Tensor::empty({n});
  be().random(RandomKind::Bernoulli, bf, 0.3, 0, {77, 0});
  std::vector<float> fv = bf.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(fv[i], bv[i] ? 1.0f : 0.0f);  // same stream, same mask
}
