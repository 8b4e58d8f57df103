// The fused kernels (cuda/fused.h) against compositions of the CPU's primitives that compute the same thing.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "cuda/fused.h"
#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {
double tol(DType d) { return d == DType::Float32 ? 2e-6 : 1e-12; }
}  // namespace

TEST(CudaFused, BiasGeluMatchesAddThenGelu) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 1;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1, 1}, Shape{7, 33}, Shape{4, 5, 768}, Shape{3000, 17}}) {
      Tensor x = random_tensor(shape, d, ++seed, -4, 4), b = random_tensor({shape.back()}, d, ++seed);
      Tensor expected = ops::unary(UnaryOp::GeluErf, ops::binary(BinaryOp::Add, x, b));
      expect_close(expected, glance::cuda::bias_gelu(to_gpu(x), to_gpu(b)), tol(d), tol(d),
                   std::string("bias_gelu ") + dtype_name(d) + " " + shape_str(shape));
      Tensor dy = random_tensor(shape, d, ++seed);
      Tensor expected_dx = ops::binary(BinaryOp::GeluErfGrad, dy, ops::binary(BinaryOp::Add, x, b));
      expect_close(expected_dx, glance::cuda::bias_gelu_backward(to_gpu(dy), to_gpu(x), to_gpu(b)), tol(d) * 2,
                   tol(d) * 2, std::string("bias_gelu_backward ") + dtype_name(d) + " " + shape_str(shape));
    }
  }
  // A transposed x (the elementwise engine takes any view).
  Tensor x = random_tensor({16, 8}, DType::Float32, 99), b = random_tensor({16}, DType::Float32, 98);
  Tensor xt = ops::transpose(x, 0, 1);
  expect_close(ops::unary(UnaryOp::GeluErf, ops::binary(BinaryOp::Add, xt, b)),
               glance::cuda::bias_gelu(ops::transpose(to_gpu(x), 0, 1), to_gpu(b)), 2e-6, 2e-6, "bias_gelu of a view");
}

TEST(CudaFused, ResidualLayerNormMatchesAddThenLayerNorm) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1, 8}, Shape{2, 9, 64}, Shape{50, 1000}, Shape{3, 4096}}) {
      for (bool affine : {false, true}) {
        const int64_t C = shape.back();
        Tensor x = random_tensor(shape, d, ++seed), r = random_tensor(shape, d, ++seed);
        Tensor w = affine ? random_tensor({C}, d, ++seed, 0.5, 1.5) : Tensor();
        Tensor b = affine ? random_tensor({C}, d, ++seed) : Tensor();
        Tensor sum = ops::binary(BinaryOp::Add, x, r);
        ops::LayerNormResult e = ops::layer_norm(sum, w, b, 1e-5);
        glance::cuda::ResidualLayerNormResult a = glance::cuda::residual_layer_norm(
            to_gpu(x), to_gpu(r), affine ? to_gpu(w) : Tensor(), affine ? to_gpu(b) : Tensor(), 1e-5);
        const std::string what = std::string(dtype_name(d)) + " " + shape_str(shape) + (affine ? " affine" : "");
        expect_equal(sum, a.sum, "residual sum " + what);
        expect_close(e.out, a.out, tol(d) * 10, tol(d) * 10, "residual_layer_norm out " + what);
        expect_close(ops::reshape(e.mean, {-1}), a.mean, tol(d) * 10, tol(d) * 10, "mean " + what);
        expect_close(ops::reshape(e.rstd, {-1}), a.rstd, tol(d) * 10, tol(d) * 10, "rstd " + what);
      }
    }
  }
}

TEST(CudaFused, SoftmaxCrossEntropyMatchesLogSoftmaxGatherAndItsGradient) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{1, 1}, Shape{5, 10}, Shape{64, 1000}, Shape{3, 5000}}) {
      for (double smoothing : {0.0, 0.1}) {
        const int64_t N = shape[0], C = shape[1];
        Tensor logits = random_tensor(shape, d, ++seed, -6, 6);
        Generator gen(++seed);
        Tensor labels = ops::randint(0, C, {N}, &gen);
        // loss = (1 - s) * -log p[label] - s * mean(log p)
        Tensor logp = ops::log_softmax(logits, 1);
        Tensor picked = ops::reshape(ops::gather(logp, 1, ops::reshape(labels, {N, 1})), {N});
        Tensor loss = ops::binary(BinaryOp::Sub, ops::binary(BinaryOp::Mul, ops::unary(UnaryOp::Neg, picked), 1.0 - smoothing),
                                  ops::binary(BinaryOp::Mul, ops::mean(logp, {1}), smoothing));
        // dlogits = softmax - (1 - s) onehot - s / C
        Tensor onehot = ops::scatter_add(ops::zeros({N, C}, d), 1, ops::reshape(labels, {N, 1}), ops::ones({N, 1}, d));
        Tensor dlogits = ops::binary(BinaryOp::Sub,
                                     ops::binary(BinaryOp::Sub, ops::softmax(logits, 1), ops::binary(BinaryOp::Mul, onehot, 1.0 - smoothing)),
                                     smoothing / double(C));
        glance::cuda::SoftmaxCrossEntropyResult r = glance::cuda::softmax_cross_entropy(to_gpu(logits), labels, smoothing);
        const std::string what = std::string(dtype_name(d)) + " " + shape_str(shape) + " s=" + std::to_string(smoothing);
        expect_close(loss, r.loss, tol(d) * 10, tol(d) * 10, "cross-entropy loss " + what);
        expect_close(dlogits, r.dlogits, tol(d) * 10, tol(d) * 10, "cross-entropy dlogits " + what);
      }
    }
  }
}

TEST(CudaFused, SoftmaxCrossEntropyBadLabelGivesNaNNotACrash) {
  GLANCE_REQUIRE_CUDA();
  Tensor logits = random_tensor({3, 4}, DType::Float32, 300);
  Tensor labels = ops::from_vector<int64_t>({1, 7, -1});
  glance::cuda::SoftmaxCrossEntropyResult r = glance::cuda::softmax_cross_entropy(to_gpu(logits), labels);
  const std::vector<double> loss = values(r.loss);
  EXPECT_FALSE(std::isnan(loss[0]));
  EXPECT_TRUE(std::isnan(loss[1]));
  EXPECT_TRUE(std::isnan(loss[2]));
}

TEST(CudaFused, AdamWMatchesTheOptimizersSequenceOfOps) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 400;
  for (DType d : {DType::Float32, DType::Float64}) {
    for (double wd : {0.0, 0.05}) {
      glance::cuda::AdamWParams hp;
      hp.lr = 3e-3;
      hp.weight_decay = wd;
      Tensor p = random_tensor({1001, 3}, d, ++seed), m = ops::zeros({1001, 3}, d), v = ops::zeros({1001, 3}, d);
      Tensor pg = to_gpu(p), mg = to_gpu(m), vg = to_gpu(v);
      for (int64_t step = 1; step <= 5; ++step) {
        Tensor g = random_tensor({1001, 3}, d, ++seed);
        // nn/optim/adamw.cpp, step for step.
        const double c1 = 1.0 - std::pow(hp.beta1, double(step)), c2 = 1.0 - std::pow(hp.beta2, double(step));
        if (wd != 0) ops::copy_(p, ops::binary(BinaryOp::Mul, p, 1.0 - hp.lr * wd));
        ops::copy_(m, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, m, hp.beta1),
                                  ops::binary(BinaryOp::Mul, g, 1.0 - hp.beta1)));
        ops::copy_(v, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, v, hp.beta2),
                                  ops::binary(BinaryOp::Mul, ops::binary(BinaryOp::Mul, g, g), 1.0 - hp.beta2)));
        Tensor denom = ops::binary(BinaryOp::Add, ops::unary(UnaryOp::Sqrt, ops::binary(BinaryOp::Div, v, c2)), hp.eps);
        ops::add_(p, ops::binary(BinaryOp::Div, m, denom), -hp.lr / c1);

        hp.step = step;
        glance::cuda::adamw_step(pg, to_gpu(g), mg, vg, hp);
      }
      const std::string what = std::string(dtype_name(d)) + " wd " + std::to_string(wd);
      expect_close(p, pg, tol(d) * 5, tol(d) * 5, "adamw param " + what);
      expect_close(m, mg, tol(d) * 5, tol(d) * 5, "adamw m " + what);
      expect_close(v, vg, tol(d) * 5, tol(d) * 5, "adamw v " + what);
    }
  }
}
