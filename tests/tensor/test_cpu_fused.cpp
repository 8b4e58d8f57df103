// The CPU backend's fused kernels (tensor/cpu/fused.cpp) against two references: the Backend's default
// composition of primitives (tensor/fused_default.cpp, the plain version they replace, called non-virtually)
// and float64 loops written here from the formulas. Sizes on both sides of the threads' threshold, a row length
// that is no multiple of the vector width, float32 and float64, and the inputs a kernel hands back to the
// composition (a strided view).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace glance;

namespace {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

std::vector<double> values(const Tensor& t) { return ops::to_dtype(ops::contiguous(t), DType::Float64).to_vector<double>(); }

void expect_close(const Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  const std::vector<double> g = values(got);
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(g[i])) << what << " element " << i;
      continue;
    }
    ASSERT_NEAR(g[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << " element " << i;
  }
}

double gelu(double z) { return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))); }
double gelu_grad(double z) {
  return 0.5 * (1.0 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
}

struct Size {
  int64_t rows, C;
};
// 5 x 37: one thread, a row no multiple of 16; 700 x 192 and 300 x 768: past the threads' threshold (2^17).
const Size kSizes[] = {{5, 37}, {700, 192}, {300, 768}};
// float32 against the float64 loops: fast_erf / fast_exp and float rounding (about 1e-6 relative).
double tol(DType t) { return t == DType::Float32 ? 2e-5 : 1e-12; }

TEST(CpuFused, BiasGeluMatchesTheCompositionAndTheFormula) {
  Generator gen(3);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Size s : kSizes) {
      const Tensor x = ops::randn({s.rows, s.C}, dtype, &gen), b = ops::randn({s.C}, dtype, &gen);
      const Tensor dy = ops::randn({s.rows, s.C}, dtype, &gen);
      const std::vector<double> xv = values(x), bv = values(b), gv = values(dy);
      std::vector<double> out(xv.size()), dx(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        const double z = xv[i] + bv[i % s.C];
        out[i] = gelu(z), dx[i] = gv[i] * gelu_grad(z);
      }
      expect_close(cpu().bias_gelu(x, b), out, tol(dtype), "bias_gelu vs float64");
      expect_close(cpu().bias_gelu(x, b), values(cpu().Backend::bias_gelu(x, b)), 1e-6, "bias_gelu vs composition");
      expect_close(cpu().bias_gelu_backward(dy, x, b), dx, tol(dtype), "bias_gelu_backward vs float64");
      expect_close(cpu().bias_gelu_backward(dy, x, b), values(cpu().Backend::bias_gelu_backward(dy, x, b)), 1e-6,
                   "bias_gelu_backward vs composition");
    }
  }
}

TEST(CpuFused, BiasGeluBackwardTakesAStridedGradient) {
  Generator gen(4);
  const Tensor x = ops::randn({6, 10}, DType::Float32, &gen), b = ops::randn({10}, DType::Float32, &gen);
  const Tensor dy = ops::transpose(ops::randn({10, 6}, DType::Float32, &gen), 0, 1);  // [6, 10], not contiguous
  expect_close(cpu().bias_gelu_backward(dy, x, b), values(cpu().Backend::bias_gelu_backward(dy, x, b)), 1e-6,
               "strided dy");
  const Tensor xt = ops::transpose(ops::randn({10, 6}, DType::Float32, &gen), 0, 1);  // handed to the composition
  expect_close(cpu().bias_gelu(xt, b), values(cpu().Backend::bias_gelu(xt, b)), 0, "strided x");
}

TEST(CpuFused, ResidualLayerNormIsTheCompositionBitForBit) {
  Generator gen(5);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Size s : kSizes) {
      const Tensor x = ops::randn({s.rows, s.C}, dtype, &gen), r = ops::randn({s.rows, s.C}, dtype, &gen);
      const Tensor w = ops::randn({s.C}, dtype, &gen), b = ops::randn({s.C}, dtype, &gen);
      for (bool affine : {true, false}) {
        const Tensor wt = affine ? w : Tensor(), bt = affine ? b : Tensor();
        const ResidualLayerNormResult got = cpu().residual_layer_norm(x, r, wt, bt, 1e-6);
        const ResidualLayerNormResult plain = cpu().Backend::residual_layer_norm(x, r, wt, bt, 1e-6);
        // The same row arithmetic as the layer norm kernel: the same bits.
        expect_close(got.sum, values(plain.sum), 0, "sum");
        expect_close(got.out, values(plain.out), 0, "out");
        expect_close(got.mean, values(plain.mean), 0, "mean");
        expect_close(got.rstd, values(plain.rstd), 0, "rstd");
        // And the formula, in float64.
        const std::vector<double> xv = values(x), rv = values(r), wv = values(w), bv = values(b);
        std::vector<double> out(xv.size());
        for (int64_t i = 0; i < s.rows; ++i) {
          double mean = 0, var = 0;
          for (int64_t j = 0; j < s.C; ++j) mean += (xv[i * s.C + j] + rv[i * s.C + j]) / double(s.C);
          for (int64_t j = 0; j < s.C; ++j) var += std::pow(xv[i * s.C + j] + rv[i * s.C + j] - mean, 2) / double(s.C);
          for (int64_t j = 0; j < s.C; ++j) {
            const double xhat = (xv[i * s.C + j] + rv[i * s.C + j] - mean) / std::sqrt(var + 1e-6);
            out[i * s.C + j] = affine ? xhat * wv[j] + bv[j] : xhat;
          }
        }
        expect_close(got.out, out, dtype == DType::Float32 ? 1e-4 : 1e-10, "out vs float64");
      }
    }
  }
}

TEST(CpuFused, SoftmaxCrossEntropyMatchesTheCompositionAndTheFormula) {
  Generator gen(6);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Size s : {Size{8, 10}, Size{200, 1000}}) {
      for (double smoothing : {0.0, 0.1}) {
        const Tensor logits = ops::binary(BinaryOp::Mul, ops::randn({s.rows, s.C}, dtype, &gen), 3.0);
        std::vector<int64_t> y(s.rows);
        for (int64_t i = 0; i < s.rows; ++i) y[i] = (i * 7) % s.C;
        y[1] = s.C;  // out of range: that row's loss and gradient are NaN
        const Tensor labels = ops::from_vector(y);
        const SoftmaxCrossEntropyResult got = cpu().softmax_cross_entropy(logits, labels, smoothing);
        const SoftmaxCrossEntropyResult plain = cpu().Backend::softmax_cross_entropy(logits, labels, smoothing);
        expect_close(got.loss, values(plain.loss), 1e-6, "loss vs composition");
        expect_close(got.dlogits, values(plain.dlogits), 1e-6, "dlogits vs composition");
        const std::vector<double> z = values(logits);
        std::vector<double> loss(s.rows), grad(z.size());
        for (int64_t i = 0; i < s.rows; ++i) {
          double mx = -INFINITY, sum = 0, mean_logp = 0;
          for (int64_t j = 0; j < s.C; ++j) mx = std::max(mx, z[i * s.C + j]);
          for (int64_t j = 0; j < s.C; ++j) sum += std::exp(z[i * s.C + j] - mx);
          const double lse = mx + std::log(sum);
          for (int64_t j = 0; j < s.C; ++j) mean_logp += (z[i * s.C + j] - lse) / double(s.C);
          const bool valid = y[i] < s.C;
          loss[i] = valid ? -(1 - smoothing) * (z[i * s.C + y[i]] - lse) - smoothing * mean_logp : NAN;
          for (int64_t j = 0; j < s.C; ++j) {
            grad[i * s.C + j] = valid ? std::exp(z[i * s.C + j] - lse) - (1 - smoothing) * (j == y[i]) - smoothing / s.C : NAN;
          }
        }
        expect_close(got.loss, loss, tol(dtype), "loss vs float64");
        expect_close(got.dlogits, grad, tol(dtype), "dlogits vs float64");
        // int32 labels: the same result
        expect_close(cpu().softmax_cross_entropy(logits, ops::to_dtype(labels, DType::Int32), smoothing).loss,
                     values(got.loss), 0, "int32 labels");
      }
    }
  }
}

TEST(CpuFused, AdamWStepMatchesTheCompositionAndTheFormula) {
  Generator gen(7);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (int64_t n : {int64_t(37), int64_t(200000)}) {
      for (double wd : {0.0, 0.05}) {
        const Tensor p0 = ops::randn({n}, dtype, &gen), g = ops::randn({n}, dtype, &gen);
        const Tensor m0 = ops::binary(BinaryOp::Mul, ops::randn({n}, dtype, &gen), 0.1);
        const Tensor v0 = ops::binary(BinaryOp::Mul, ops::unary(UnaryOp::Abs, ops::randn({n}, dtype, &gen)), 0.01);
        const AdamWParams h{1e-3, 0.9, 0.999, 1e-8, wd, 3};
        Tensor p = ops::clone(p0), m = ops::clone(m0), v = ops::clone(v0);
        cpu().adamw_step(p, g, m, v, h);
        Tensor pr = ops::clone(p0), mr = ops::clone(m0), vr = ops::clone(v0);
        cpu().Backend::adamw_step(pr, g, mr, vr, h);
        expect_close(p, values(pr), 1e-6, "p vs composition");
        expect_close(m, values(mr), 1e-6, "m vs composition");
        expect_close(v, values(vr), 1e-6, "v vs composition");
        const std::vector<double> pv = values(p0), gv = values(g), mv = values(m0), vv = values(v0);
        std::vector<double> pw(n), mw(n), vw(n);
        const double c1 = 1 - std::pow(0.9, 3.0), c2 = 1 - std::pow(0.999, 3.0);
        for (int64_t i = 0; i < n; ++i) {
          mw[i] = 0.9 * mv[i] + 0.1 * gv[i];
          vw[i] = 0.999 * vv[i] + 0.001 * gv[i] * gv[i];
          pw[i] = pv[i] * (1 - 1e-3 * wd) - 1e-3 / c1 * mw[i] / (std::sqrt(vw[i] / c2) + 1e-8);
        }
        expect_close(p, pw, tol(dtype), "p vs float64");
        expect_close(m, mw, tol(dtype), "m vs float64");
        expect_close(v, vw, tol(dtype), "v vs float64");
      }
    }
  }
}

TEST(CpuFused, TheCpuBackendOffersEveryFusedOp) {
  for (FusedOp op : {FusedOp::BiasGelu, FusedOp::ResidualLayerNorm, FusedOp::SoftmaxCrossEntropy, FusedOp::AdamWStep}) {
    EXPECT_TRUE(cpu().has_fused(op));
  }
}

}  // namespace
