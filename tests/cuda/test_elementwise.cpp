// CPU-vs-CUDA parity for the elementwise primitives: fill, copy (every dtype pair), every UnaryOp and BinaryOp
// on every dtype the CPU supports, where, in-place add, on contiguous, transposed, sliced (step 2), expanded
// (stride 0) and offset views. The same op layer (tensor/ops.h) runs on both devices; only the backend differs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

// Runs `op` on the CPU inputs and on the GPU inputs. When the CPU refuses (an unsupported dtype), the GPU must
// refuse too; otherwise the results must agree.
void check_parity(const std::function<Tensor(bool on_gpu)>& op, double rtol, double atol, const std::string& what) {
  Tensor expected;
  try {
    expected = op(false);
  } catch (const std::invalid_argument&) {
    EXPECT_THROW(op(true), std::invalid_argument) << what << ": the CPU refuses, the GPU should too";
    return;
  }
  expect_close(expected, op(true), rtol, atol, what);
}

std::string name(DType d) { return dtype_name(d); }

}  // namespace

TEST(CudaElementwise, FillEveryDtypeIntoViewsLeavesTheRestAlone) {
  GLANCE_REQUIRE_CUDA();
  for (DType d : all_dtypes()) {
    for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Offset}) {
      for (double v : {0.0, 1.0, 2.5, 7.0}) {
        ViewRecipe r = make_recipe({5, 7}, d, l, 3, 0, 10);
        Tensor cpu_base = ops::clone(r.base), gpu_base = to_gpu(r.base);
        ops::fill_(r.apply(cpu_base), v);
        ops::fill_(r.apply(gpu_base), v);
        expect_equal(cpu_base, gpu_base, "fill " + name(d) + " " + layout_name(l) + " " + std::to_string(v));
      }
    }
  }
}

// -0.0 equals 0.0, so the test above cannot see its sign: a contiguous fill must not take the memset path
// (all-zero bytes, +0.0) for it.
TEST(CudaElementwise, FillWithNegativeZeroKeepsTheSign) {
  GLANCE_REQUIRE_CUDA();
  Tensor x = ops::ones({1000}, DType::Float32, Device::cuda());
  ops::fill_(x, -0.0);
  for (float v : x.to_vector<float>()) ASSERT_TRUE(v == 0.0f && std::signbit(v));
  Tensor y = ops::ones({1000}, DType::Float64, Device::cuda());
  ops::fill_(y, -0.0);
  for (double v : y.to_vector<double>()) ASSERT_TRUE(v == 0.0 && std::signbit(v));
}

// arange is made on the device (no upload): the same values as the CPU's, bit for bit, in every dtype, for
// integer, fractional and negative steps, long enough that the grid-stride loop wraps.
TEST(CudaElementwise, ArangeMatchesTheCpuInEveryDtype) {
  GLANCE_REQUIRE_CUDA();
  struct Range { double start, end, step; };
  for (const Range& r : {Range{0, 5, 1}, Range{2, 9, 3}, Range{5, 0, -2}, Range{0, 1, 0.1}, Range{-1, 1, 0.5},
                         Range{0, 3000000, 1}, Range{3, 3, 1},
                         Range{0.1, 2, 0.3}}) {  // i = 3: 0.1 + 0.9 rounds differently with and without fma
    for (DType d : all_dtypes()) {
      // Out-of-range float -> uint8 conversions are undefined in C++ (and differ between the devices).
      if (d == DType::UInt8 && (r.start < 0 || r.end > 255)) continue;
      const std::string what = "arange(" + std::to_string(r.start) + ", " + std::to_string(r.end) + ", " +
                               std::to_string(r.step) + ") " + name(d);
      const Tensor gpu = ops::arange(r.start, r.end, r.step, d, Device::cuda());
      ASSERT_TRUE(gpu.device().is_cuda()) << what;
      expect_equal(ops::arange(r.start, r.end, r.step, d), gpu, what);
    }
  }
}

TEST(CudaElementwise, CopyEveryDtypePairFromEveryLayout) {
  GLANCE_REQUIRE_CUDA();
  for (DType from : all_dtypes()) {
    for (DType to : all_dtypes()) {
      for (Layout l : all_layouts()) {
        // Values in [0, 100): representable in every dtype, so conversions are defined on both devices.
        auto [c, g] = make_pair_view({6, 9}, from, l, 5, 0, 100);
        expect_equal(ops::to_dtype(ops::clone(c), to), ops::to_dtype(ops::clone(g), to),
                     "copy " + name(from) + " -> " + name(to) + " from " + layout_name(l));
        // Into a strided destination: the transpose of a fresh tensor.
        Tensor dc = ops::zeros({9, 6}, to), dg = ops::zeros({9, 6}, to, gpu());
        ops::copy_(ops::transpose(dc, 0, 1), c);
        ops::copy_(ops::transpose(dg, 0, 1), g);
        expect_equal(dc, dg, "copy into a transposed view " + name(from) + " -> " + name(to));
      }
    }
  }
}

TEST(CudaElementwise, CopyLargeAndOddSizesVectorisedPathAndTail) {
  GLANCE_REQUIRE_CUDA();
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4097), int64_t((1 << 20) + 3)}) {
    Tensor x = random_tensor({n}, DType::Float32, 9);
    // float -> double -> float through the conversion kernel (not the memcpy path).
    Tensor g = ops::to_dtype(ops::to_dtype(to_gpu(x), DType::Float64), DType::Float32);
    expect_equal(x, g, "conversion round trip of " + std::to_string(n));
    // An unaligned start (offset 1): the strided path.
    Tensor xs = ops::narrow(x, 0, n > 1 ? 1 : 0, n > 1 ? n - 1 : 1);
    expect_equal(ops::unary(UnaryOp::Neg, xs), ops::unary(UnaryOp::Neg, ops::narrow(to_gpu(x), 0, n > 1 ? 1 : 0, n > 1 ? n - 1 : 1)),
                 "neg of an unaligned view of " + std::to_string(n));
  }
}

TEST(CudaElementwise, CopyWithMoreAxesThanTheKernelTakes) {
  GLANCE_REQUIRE_CUDA();
  // 10 axes of size 2, reversed: no two neighbours merge, so the copy is split into several launches.
  Shape shape(10, 2);
  Tensor x = random_tensor(shape, DType::Float32, 13);
  std::vector<int64_t> order = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  expect_equal(ops::contiguous(ops::permute(x, order)), ops::contiguous(ops::permute(to_gpu(x), order)),
               "copy of a 10-axis permutation");
}

TEST(CudaElementwise, EveryUnaryOpEveryDtypeEveryLayout) {
  GLANCE_REQUIRE_CUDA();
  const UnaryOp ops_list[] = {UnaryOp::Neg,  UnaryOp::Exp,     UnaryOp::Log,  UnaryOp::Sqrt,     UnaryOp::Rsqrt,
                              UnaryOp::Abs,  UnaryOp::Tanh,    UnaryOp::Sigmoid, UnaryOp::Relu,  UnaryOp::GeluTanh,
                              UnaryOp::GeluErf, UnaryOp::Sin,  UnaryOp::Cos,  UnaryOp::Sign,     UnaryOp::LogicalNot};
  uint64_t seed = 100;
  for (UnaryOp op : ops_list) {
    const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt;
    for (DType d : all_dtypes()) {
      for (Layout l : all_layouts()) {
        const double low = is_floating(d) ? (positive ? 0.1 : -3.0) : -50.0;
        const double high = is_floating(d) ? 3.0 : 50.0;
        auto [c, g] = make_pair_view({7, 33}, d, l, ++seed, low, high);
        check_parity([&, c = c, g = g](bool on_gpu) { return ops::unary(op, on_gpu ? g : c); }, rtol_for(d) * 2,
                     atol_for(d) * 2,
                     std::string(ops::op_name(op)) + " " + name(d) + " " + layout_name(l));
      }
    }
  }
}

TEST(CudaElementwise, UnarySpecialValues) {
  GLANCE_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = ops::from_vector<double>({0.0, -0.0, inf, -inf, nan, 1e-300, -80.0, 80.0, 700.0});
  for (UnaryOp op : {UnaryOp::Relu, UnaryOp::Sign, UnaryOp::Abs, UnaryOp::Sigmoid, UnaryOp::Exp, UnaryOp::Tanh,
                     UnaryOp::GeluErf}) {
    expect_close(ops::unary(op, x), ops::unary(op, to_gpu(x)), 1e-12, 1e-300, std::string(ops::op_name(op)) + " specials");
  }
}

TEST(CudaElementwise, EveryBinaryOpEveryDtypeWithBroadcastAndScalar) {
  GLANCE_REQUIRE_CUDA();
  const BinaryOp ops_list[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul,     BinaryOp::Div,
                               BinaryOp::Pow, BinaryOp::Maximum, BinaryOp::Minimum, BinaryOp::GeluErfGrad,
                               BinaryOp::Eq,  BinaryOp::Ne,  BinaryOp::Lt,      BinaryOp::Le,
                               BinaryOp::Gt,  BinaryOp::Ge};
  uint64_t seed = 1000;
  for (BinaryOp op : ops_list) {
    for (DType d : all_dtypes()) {
      // Domains: pow needs a positive float base and a small integer exponent; integer division includes 0
      // divisors (defined as 0 here); comparisons see plenty of ties on the small integer range.
      double alow = -5, ahigh = 5, blow = -5, bhigh = 5;
      if (op == BinaryOp::Pow) {
        if (is_floating(d)) {
          alow = 0.1, ahigh = 3, blow = -2, bhigh = 2;
        } else {
          alow = -4, ahigh = 5, blow = 0, bhigh = 4;
        }
      }
      const double rtol = rtol_for(d) * 4, atol = atol_for(d) * 4;
      for (Layout l : all_layouts()) {
        auto [ac, ag] = make_pair_view({6, 10}, d, Layout::Contiguous, ++seed, alow, ahigh);
        auto [bc, bg] = make_pair_view({6, 10}, d, l, ++seed, blow, bhigh);
        check_parity([&, ac = ac, ag = ag, bc = bc, bg = bg](bool gpu_side) {
          return ops::binary(op, gpu_side ? ag : ac, gpu_side ? bg : bc);
        }, rtol, atol, std::string(ops::op_name(op)) + " " + name(d) + " b " + layout_name(l));
        // a as the strided one, b contiguous.
        auto [a2c, a2g] = make_pair_view({6, 10}, d, l, ++seed, alow, ahigh);
        auto [b2c, b2g] = make_pair_view({6, 10}, d, Layout::Contiguous, ++seed, blow, bhigh);
        check_parity([&, ac = a2c, ag = a2g, bc = b2c, bg = b2g](bool gpu_side) {
          return ops::binary(op, gpu_side ? ag : ac, gpu_side ? bg : bc);
        }, rtol, atol, std::string(ops::op_name(op)) + " " + name(d) + " a " + layout_name(l));
      }
      // Broadcasting: [4, 1, 5] op [3, 1] -> [4, 3, 5].
      Tensor a = random_tensor({4, 1, 5}, d, ++seed, alow, ahigh), b = random_tensor({3, 1}, d, ++seed, blow, bhigh);
      check_parity([&](bool g) { return ops::binary(op, g ? to_gpu(a) : a, g ? to_gpu(b) : b); }, rtol, atol,
                   std::string(ops::op_name(op)) + " " + name(d) + " broadcast");
      // A scalar operand (converted to the dtype first).
      for (double s : {0.0, 2.0, 3.0}) {
        if (op == BinaryOp::Pow && !is_floating(d) && s < 0) continue;
        check_parity([&](bool g) { return ops::binary(op, g ? to_gpu(a) : a, s); }, rtol, atol,
                     std::string(ops::op_name(op)) + " " + name(d) + " scalar " + std::to_string(s));
      }
    }
  }
}

TEST(CudaElementwise, IntegerDivisionByZeroAndOverflowCases) {
  GLANCE_REQUIRE_CUDA();
  Tensor a = ops::from_vector<int32_t>({7, -7, 5, std::numeric_limits<int32_t>::min(), 0});
  Tensor b = ops::from_vector<int32_t>({2, 2, 0, -1, 0});
  expect_equal(ops::binary(BinaryOp::Div, a, b), ops::binary(BinaryOp::Div, to_gpu(a), to_gpu(b)), "int32 div");
  Tensor u = ops::from_vector<uint8_t>({250, 3, 0});
  Tensor v = ops::from_vector<uint8_t>({10, 5, 1});
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul}) {
    expect_equal(ops::binary(op, u, v), ops::binary(op, to_gpu(u), to_gpu(v)), std::string("uint8 wrap ") + ops::op_name(op));
  }
}

TEST(CudaElementwise, MaximumMinimumPropagateNaN) {
  GLANCE_REQUIRE_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor a = ops::from_vector<float>({1, nan, 3, nan});
  Tensor b = ops::from_vector<float>({nan, 2, 1, nan});
  for (BinaryOp op : {BinaryOp::Maximum, BinaryOp::Minimum}) {
    expect_equal(ops::binary(op, a, b), ops::binary(op, to_gpu(a), to_gpu(b)), ops::op_name(op));
  }
}

TEST(CudaElementwise, WhereEveryDtypeWithBroadcastCondition) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 5000;
  for (DType d : all_dtypes()) {
    for (Layout l : all_layouts()) {
      auto [cc, cg] = make_pair_view({5, 8}, DType::Bool, l, ++seed);
      auto [ac, ag] = make_pair_view({5, 8}, d, Layout::Transposed, ++seed, 0, 50);
      auto [bc, bg] = make_pair_view({5, 8}, d, l, ++seed, 0, 50);
      expect_equal(ops::where(cc, ac, bc), ops::where(cg, ag, bg), "where " + name(d) + " " + layout_name(l));
    }
    Tensor cond = random_tensor({1, 8}, DType::Bool, ++seed), a = random_tensor({5, 1}, d, ++seed, 0, 9);
    Tensor b = random_tensor({8}, d, ++seed, 0, 9);
    expect_equal(ops::where(cond, a, b), ops::where(to_gpu(cond), to_gpu(a), to_gpu(b)), "where broadcast " + name(d));
  }
}

TEST(CudaElementwise, InPlaceAddIntoAView) {
  GLANCE_REQUIRE_CUDA();
  Tensor base = random_tensor({8, 6}, DType::Float32, 21), src = random_tensor({6}, DType::Float32, 22);
  Tensor bc = ops::clone(base), bg = to_gpu(base);
  ops::add_(ops::slice(bc, 0, 1, 8, 2), src, 0.5);
  ops::add_(ops::slice(bg, 0, 1, 8, 2), to_gpu(src), 0.5);
  expect_close(bc, bg, 1e-6, 1e-6, "add_ into rows 1, 3, 5, 7");
}
