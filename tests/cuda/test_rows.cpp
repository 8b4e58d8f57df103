// CPU-vs-CUDA parity for the row kernels: softmax and log-softmax (warp-per-row and block-per-row sizes, other
// axes, extreme values), their backward, and layer norm forward and backward (with and without affine, dweight
// and dbias across many rows).
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

const int64_t kRowLengths[] = {1, 7, 64, 1000, 1024, 1025, 5000};  // around the warp / block switch at 1024

double row_rtol(DType d) { return d == DType::Float32 ? 1e-5 : 1e-12; }
double row_atol(DType d) { return d == DType::Float32 ? 1e-6 : 1e-13; }

}  // namespace

TEST(CudaRows, SoftmaxAndLogSoftmaxEveryRowLength) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 1;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (int64_t C : kRowLengths) {
      for (int64_t rows : {1, 3, 300}) {
        Tensor x = random_tensor({rows, C}, d, ++seed, -8, 8);
        const std::string what = std::string(dtype_name(d)) + " [" + std::to_string(rows) + ", " + std::to_string(C) + "]";
        expect_close(ops::softmax(x), ops::softmax(to_gpu(x)), row_rtol(d), row_atol(d), "softmax " + what);
        expect_close(ops::log_softmax(x), ops::log_softmax(to_gpu(x)), row_rtol(d), row_atol(d) * 10,
                     "log_softmax " + what);
      }
    }
  }
}

TEST(CudaRows, SoftmaxOverAnotherAxisOfAView) {
  GLANCE_REQUIRE_CUDA();
  for (Layout l : all_layouts()) {
    auto [c, g] = make_pair_view({4, 9, 33}, DType::Float32, l, 7, -5, 5);
    for (int64_t axis : {0, 1, 2}) {
      expect_close(ops::softmax(c, axis), ops::softmax(g, axis), 1e-5, 1e-6,
                   std::string("softmax axis ") + std::to_string(axis) + " " + layout_name(l));
    }
  }
}

TEST(CudaRows, SoftmaxExtremeValues) {
  GLANCE_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Large logits (no overflow thanks to the max), a -inf entry (probability 0), a row with a NaN (all NaN), an
  // all -inf row (NaN on both devices).
  Tensor x = ops::from_vector<double>({1000, 999, -1000, 0, 1, -inf, 2, 3, 1, nan, 2, 3, -inf, -inf, -inf, -inf}, {4, 4});
  for (DType d : {DType::Float32, DType::Float64}) {
    Tensor xd = ops::to_dtype(x, d);
    expect_close(ops::softmax(xd), ops::softmax(to_gpu(xd)), row_rtol(d), row_atol(d), "softmax extremes");
    expect_close(ops::log_softmax(xd), ops::log_softmax(to_gpu(xd)), row_rtol(d), row_atol(d), "log_softmax extremes");
  }
}

TEST(CudaRows, SoftmaxBackward) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (int64_t C : kRowLengths) {
      for (bool log : {false, true}) {
        Tensor x = random_tensor({37, C}, d, ++seed, -4, 4), dy = random_tensor({37, C}, d, ++seed);
        Tensor y = log ? ops::log_softmax(x) : ops::softmax(x);
        Tensor e = ops::softmax_backward(y, dy, -1, log);
        Tensor a = ops::softmax_backward(to_gpu(y), to_gpu(dy), -1, log);
        expect_close(e, a, row_rtol(d) * 10, row_atol(d) * 10,
                     std::string(log ? "log_softmax" : "softmax") + " backward " + dtype_name(d) + " C=" + std::to_string(C));
      }
    }
  }
}

TEST(CudaRows, LayerNormForwardAndBackward) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (int64_t C : kRowLengths) {
      for (int64_t rows : {1, 5, 1000}) {
        for (bool affine : {false, true}) {
          Tensor x = random_tensor({rows, C}, d, ++seed, -3, 5);
          Tensor w = affine ? random_tensor({C}, d, ++seed, 0.5, 1.5) : Tensor();
          Tensor b = affine ? random_tensor({C}, d, ++seed) : Tensor();
          Tensor wg = affine ? to_gpu(w) : Tensor(), bg = affine ? to_gpu(b) : Tensor();
          const std::string what = std::string(dtype_name(d)) + " [" + std::to_string(rows) + ", " +
                                   std::to_string(C) + "]" + (affine ? " affine" : "");
          ops::LayerNormResult fc = ops::layer_norm(x, w, b, 1e-5);
          ops::LayerNormResult fg = ops::layer_norm(to_gpu(x), wg, bg, 1e-5);
          // rstd can be large for short rows (C = 1: 1/sqrt(eps)); compare relative.
          expect_close(fc.out, fg.out, row_rtol(d) * 10, row_atol(d) * 10, "layer_norm out " + what);
          expect_close(fc.mean, fg.mean, row_rtol(d) * 10, row_atol(d) * 10, "layer_norm mean " + what);
          expect_close(fc.rstd, fg.rstd, row_rtol(d) * 10, row_atol(d) * 10, "layer_norm rstd " + what);

          Tensor dy = random_tensor({rows, C}, d, ++seed);
          ops::LayerNormGrads gc = ops::layer_norm_backward(dy, x, fc.mean, fc.rstd, w, true);
          ops::LayerNormGrads gg = ops::layer_norm_backward(to_gpu(dy), to_gpu(x), fg.mean, fg.rstd, wg, true);
          const double scale = C == 1 ? 1e3 : 1.0;  // C = 1: dx = 0 up to rounding of rstd ~ 316
          expect_close(gc.dx, gg.dx, row_rtol(d) * 20, row_atol(d) * 20 * scale, "layer_norm dx " + what);
          const double col_atol = (d == DType::Float32 ? 1e-5 : 1e-11) * double(rows);
          expect_close(gc.dweight, gg.dweight, row_rtol(d) * 10, col_atol, "layer_norm dweight " + what);
          expect_close(gc.dbias, gg.dbias, row_rtol(d) * 10, col_atol, "layer_norm dbias " + what);
        }
      }
    }
  }
}

TEST(CudaRows, LayerNormOfAStridedInputAndManyRows) {
  GLANCE_REQUIRE_CUDA();
  // ops::layer_norm makes a transposed input contiguous first; 70000 rows exercise the sliced column sums.
  auto [c, g] = make_pair_view({70'000, 24}, DType::Float32, Layout::Transposed, 300);
  Tensor w = random_tensor({24}, DType::Float32, 301), b = random_tensor({24}, DType::Float32, 302);
  ops::LayerNormResult fc = ops::layer_norm(c, w, b), fg = ops::layer_norm(g, to_gpu(w), to_gpu(b));
  expect_close(fc.out, fg.out, 1e-4, 1e-5, "layer_norm out of a transposed [70000, 24]");
  Tensor dy = random_tensor({70'000, 24}, DType::Float32, 303);
  ops::LayerNormGrads gc = ops::layer_norm_backward(dy, c, fc.mean, fc.rstd, w, true);
  ops::LayerNormGrads gg = ops::layer_norm_backward(to_gpu(dy), g, fg.mean, fg.rstd, to_gpu(w), true);
  expect_close(gc.dweight, gg.dweight, 1e-4, 2e-2, "dweight over 70000 rows");
  expect_close(gc.dbias, gg.dbias, 1e-4, 2e-2, "dbias over 70000 rows");
}
