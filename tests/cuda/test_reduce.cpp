// CPU-vs-CUDA parity for reduce (sum / max / min over any set of axes) and arg_reduce: every dtype, every
// layout, the three kernel paths (warp per output, thread per output, sliced into two passes), empty
// reductions and NaN propagation.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

// Float sums: the GPU adds in double, the CPU adds float32 in 16 float lanes before combining in double, and
// the orders differ, so float32 sums agree to a few float32 ulps of the running sums: `float_atol` (absolute,
// scaled to the test's values). Max/min and integer sums are exact.
void check_reduce(ReduceOp op, const Tensor& c, const Tensor& g, const std::vector<int64_t>& axes, bool keepdim,
                  const std::string& what, double float_atol = 1e-3) {
  auto run = [&](const Tensor& x) {
    switch (op) {
      case ReduceOp::Sum: return ops::sum(x, axes, keepdim);
      case ReduceOp::Max: return ops::max(x, axes, keepdim);
      case ReduceOp::Min: return ops::min(x, axes, keepdim);
    }
    return Tensor();
  };
  const DType d = c.dtype();
  const bool exact = op != ReduceOp::Sum || !is_floating(d);
  const double rtol = d == DType::Float32 ? 1e-5 : 1e-12, atol = d == DType::Float32 ? float_atol : 1e-9;
  expect_close(run(c), run(g), exact ? 0.0 : rtol, exact ? 0.0 : atol, what);
}

const char* op_str(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : (op == ReduceOp::Max ? "max" : "min"); }

}  // namespace

TEST(CudaReduce, EveryOpEveryDtypeEveryAxisSetAndLayout) {
  GLANCE_REQUIRE_CUDA();
  const std::vector<std::vector<int64_t>> axis_sets = {{}, {0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {-1}};
  uint64_t seed = 1;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    for (DType d : all_dtypes()) {
      if (op == ReduceOp::Sum && d == DType::Bool) continue;  // refused by the op layer
      for (Layout l : all_layouts()) {
        auto [c, g] = make_pair_view({5, 6, 37}, d, l, ++seed, -20, 20);
        for (const auto& axes : axis_sets) {
          for (bool keepdim : {false, true}) {
            std::string axes_str;
            for (int64_t a : axes) axes_str += std::to_string(a) + " ";
            check_reduce(op, c, g, axes, keepdim,
                         std::string(op_str(op)) + " " + dtype_name(d) + " " + layout_name(l) + " axes [" + axes_str + "]");
          }
        }
      }
    }
  }
}

TEST(CudaReduce, LargeReductionsTakeTheSlicedPath) {
  GLANCE_REQUIRE_CUDA();
  // The whole of a long vector (one output, many slices), the rows of a tall matrix (few outputs, thread
  // kernel with slices), and many short rows (no slices).
  Tensor v = random_tensor({3'000'001}, DType::Float32, 3);
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    check_reduce(op, v, to_gpu(v), {}, false, std::string(op_str(op)) + " of 3M floats", 2e-2);
  }
  Tensor tall = random_tensor({200'000, 40}, DType::Float64, 4);
  check_reduce(ReduceOp::Sum, tall, to_gpu(tall), {0}, false, "column sums of [200000, 40]");
  check_reduce(ReduceOp::Max, tall, to_gpu(tall), {0}, false, "column max of [200000, 40]");
  Tensor wide = random_tensor({4, 500'000}, DType::Int64, 5, -1000, 1000);
  check_reduce(ReduceOp::Sum, wide, to_gpu(wide), {1}, false, "row sums of [4, 500000] int64");
  Tensor many = random_tensor({100'000, 7}, DType::Int32, 6, -100, 100);
  check_reduce(ReduceOp::Sum, many, to_gpu(many), {1}, true, "row sums of [100000, 7] int32");
  // A reduced axis that is not innermost and a kept axis that is (the thread-per-output kernel).
  Tensor btc = random_tensor({8, 300, 64}, DType::Float32, 7);
  check_reduce(ReduceOp::Sum, btc, to_gpu(btc), {1}, false, "sum over T of [B, T, C]");
}

TEST(CudaReduce, Uint8SumWrapsLikeTheCpu) {
  GLANCE_REQUIRE_CUDA();
  Tensor x = random_tensor({3, 100}, DType::UInt8, 8, 0, 255);
  check_reduce(ReduceOp::Sum, x, to_gpu(x), {1}, false, "uint8 sum");
}

TEST(CudaReduce, EmptyReductionIsZeroAndMaxOfEmptyIsRefused) {
  GLANCE_REQUIRE_CUDA();
  Tensor x = ops::zeros({3, 0, 4});
  expect_equal(ops::sum(x, {1}), ops::sum(to_gpu(x), {1}), "sum over an empty axis");
  EXPECT_THROW(ops::max(to_gpu(x), {1}), std::invalid_argument);
}

TEST(CudaReduce, MaxMinPropagateNaN) {
  GLANCE_REQUIRE_CUDA();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = ops::from_vector<double>({1, nan, 3, 4, 5, 6, 7, nan, 2, 2, 2, 2}, {3, 4});
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
    for (int64_t axis : {0, 1}) check_reduce(op, x, to_gpu(x), {axis}, false, std::string(op_str(op)) + " NaN");
  }
  Tensor big = random_tensor({100'000}, DType::Float32, 9);
  big.data<float>()[77'777] = std::numeric_limits<float>::quiet_NaN();
  check_reduce(ReduceOp::Max, big, to_gpu(big), {}, false, "max of 100000 with one NaN");
}

TEST(CudaArgReduce, EveryDtypeShortAndLongAxesTiesAndNaN) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 50;
  for (DType d : all_dtypes()) {
    for (Layout l : all_layouts()) {
      // Small integer range: many ties, and the first index must win on both devices.
      for (const Shape& shape : {Shape{6, 5, 9}, Shape{3, 4, 70}}) {
        auto [c, g] = make_pair_view(shape, d, l, ++seed, 0, 4);
        for (int64_t axis : {0, 1, 2}) {
          for (bool is_max : {true, false}) {
            Tensor e = is_max ? ops::argmax(c, axis) : ops::argmin(c, axis);
            Tensor a = is_max ? ops::argmax(g, axis) : ops::argmin(g, axis);
            expect_equal(e, a, std::string(is_max ? "argmax " : "argmin ") + dtype_name(d) + " " + layout_name(l) +
                                   " " + shape_str(shape) + " axis " + std::to_string(axis));
          }
        }
      }
    }
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = random_tensor({2, 100}, DType::Float32, 60);
  x.data<float>()[40] = nan;
  x.data<float>()[70] = nan;  // the first NaN (index 40) wins
  x.data<float>()[150] = 5.0f;
  x.data<float>()[180] = 5.0f;  // a tie at the max: index 50 wins
  for (bool is_max : {true, false}) {
    Tensor e = is_max ? ops::argmax(x, 1) : ops::argmin(x, 1);
    Tensor a = is_max ? ops::argmax(to_gpu(x), 1) : ops::argmin(to_gpu(x), 1);
    expect_equal(e, a, is_max ? "argmax with NaN and ties" : "argmin with NaN");
  }
}
