// nn's use of the CUDA fused kernels (nn/fused.h, the CUDA backend's fused ops in cuda/fused.cu): on the GPU, cross_entropy, Mlp,
// LayerNorm::add_and_norm and AdamW with fusion on must equal the same calls with fusion off (the composition of
// CUDA primitives), values and gradients. The registration itself needs no GPU and is checked everywhere.
#include <gtest/gtest.h>

#include "cuda/cuda_backend.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_testing.h"
#include "nn/add_norm_testing.h"
#include "nn/fused.h"
#include "nn/layer_norm.h"
#include "nn/loss.h"
#include "nn/mlp.h"
#include "nn/optim/adamw.h"

namespace {

using namespace glance;
using namespace glance::nn;
using namespace glance::cuda_testing;

void expect_near(const Tensor& a, const Tensor& b, double tol, const char* what) {
  const std::vector<double> x = ops::to_dtype(to_cpu(a), DType::Float64).to_vector<double>();
  const std::vector<double> y = ops::to_dtype(to_cpu(b), DType::Float64).to_vector<double>();
  ASSERT_EQ(x.size(), y.size()) << what;
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], tol * (1 + std::fabs(y[i]))) << what << " element " << i;
}

TEST(FusedNnCuda, TheCudaBackendFusesEveryOp) {
  const Backend& backend = *glance::cuda::backend_instance();
  for (FusedOp op : {FusedOp::BiasGelu, FusedOp::ResidualLayerNorm, FusedOp::SoftmaxCrossEntropy, FusedOp::AdamWStep}) {
    EXPECT_TRUE(backend.has_fused(op));
  }
  GLANCE_REQUIRE_CUDA();
  EXPECT_NE(fused_backend(Device::cuda(), FusedOp::BiasGelu), nullptr);
  FusionGuard off(false);
  EXPECT_EQ(fused_backend(Device::cuda(), FusedOp::BiasGelu), nullptr);
}

TEST(FusedNnCuda, CrossEntropyFusedEqualsUnfused) {
  GLANCE_REQUIRE_CUDA();
  const Tensor logits = to_gpu(random_tensor({37, 10}, DType::Float32, 1, -4, 4));
  const Tensor labels = to_gpu(random_tensor({37}, DType::Int64, 2, 0, 10));
  for (const double s : {0.0, 0.1}) {
    Tensor a = ops::clone(logits).set_requires_grad(), b = ops::clone(logits).set_requires_grad();
    Tensor fused = cross_entropy(a, labels, s);
    fused.backward();
    Tensor plain;
    {
      FusionGuard off(false);
      plain = cross_entropy(b, labels, s);
      plain.backward();
    }
    expect_near(fused, plain, 1e-6, "loss");
    expect_near(a.grad(), b.grad(), 1e-6, "dlogits");
  }
}

// Labels on the host are checked there, on any device; labels already on the GPU go to the fused kernel
// unread, and a bad one makes the loss NaN (not a read of garbage memory, not a silent finite loss).
TEST(FusedNnCuda, CrossEntropyLabelChecksByWhereTheLabelsLive) {
  GLANCE_REQUIRE_CUDA();
  const Tensor logits = to_gpu(random_tensor({3, 4}, DType::Float32, 1, -4, 4));
  try {
    cross_entropy(logits, ops::from_vector<int64_t>({0, 4, 1}));
    ADD_FAILURE() << "a host label 4 of 4 classes was accepted";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("label 4"), std::string::npos) << e.what();
  }
  for (int64_t bad : {4, -1, 1000000}) {
    const double loss = cross_entropy(logits, to_gpu(ops::from_vector<int64_t>({0, bad, 1}))).item();
    EXPECT_TRUE(std::isnan(loss)) << "device label " << bad << " gave loss " << loss;
  }
  EXPECT_TRUE(std::isfinite(cross_entropy(logits, to_gpu(ops::from_vector<int64_t>({0, 3, 1}))).item()));
}

TEST(FusedNnCuda, MlpFusedEqualsUnfused) {
  GLANCE_REQUIRE_CUDA();
  manual_seed(5);
  Mlp mlp(64, 256, 0.0);
  mlp.to(gpu());
  const Tensor x_value = to_gpu(random_tensor({300, 64}, DType::Float32, 3));
  auto run = [&](bool fusion) {
    FusionGuard guard(fusion);
    mlp.zero_grad();
    Tensor x = ops::clone(x_value).set_requires_grad();
    Tensor y = mlp.forward(x);
    sum(y * y).backward();
    return std::vector<Tensor>{y.detach(), x.grad(), ops::clone(mlp.fc1->weight.grad()), ops::clone(mlp.fc1->bias.grad())};
  };
  const std::vector<Tensor> fused = run(true), plain = run(false);
  const char* names[] = {"output", "x grad", "fc1.weight grad", "fc1.bias grad"};
  for (size_t i = 0; i < fused.size(); ++i) expect_near(fused[i], plain[i], 1e-5, names[i]);
}

// ViT-B's width (768) and a non-multiple of the warp (100), rows of a transformer's token matrix; the loss weighs
// the sum and the norm by their own random tensors (nn/add_norm_testing.h), so both outputs' gradients count.
TEST(FusedNnCuda, AddAndNormFusedEqualsUnfused) {
  GLANCE_REQUIRE_CUDA();
  for (const int64_t C : {int64_t{768}, int64_t{100}}) {
    LayerNorm norm(C);
    ops::copy_(norm.weight, random_tensor({C}, DType::Float32, 6));
    ops::copy_(norm.bias, random_tensor({C}, DType::Float32, 7));
    norm.to(gpu());
    const Tensor x_value = to_gpu(random_tensor({257, C}, DType::Float32, 8));
    const Tensor r_value = to_gpu(random_tensor({257, C}, DType::Float32, 9));
    const Tensor k_sum = to_gpu(random_tensor({257, C}, DType::Float32, 10));
    const Tensor k_norm = to_gpu(random_tensor({257, C}, DType::Float32, 11));
    auto run = [&](bool fusion) {
      FusionGuard guard(fusion);
      return glance::testing::add_and_norm_results(norm, x_value, r_value, k_sum, k_norm);
    };
    const std::vector<Tensor> fused = run(true), plain = run(false);
    for (size_t i = 0; i < fused.size(); ++i) {
      expect_near(fused[i], plain[i], 1e-5, glance::testing::kAddAndNormResultNames[i]);
    }
  }
  // Without affine parameters (the kernel reads no weight and bias).
  LayerNorm plain_norm(64, 1e-5, /*affine=*/false);
  const Tensor x = to_gpu(random_tensor({33, 64}, DType::Float32, 12));
  const Tensor r = to_gpu(random_tensor({33, 64}, DType::Float32, 13));
  const auto [s_fused, n_fused] = plain_norm.add_and_norm(x, r);
  FusionGuard off(false);
  const auto [s_plain, n_plain] = plain_norm.add_and_norm(x, r);
  expect_near(s_fused, s_plain, 1e-6, "sum, no affine");
  expect_near(n_fused, n_plain, 1e-5, "norm, no affine");
}

TEST(FusedNnCuda, AdamWFusedEqualsUnfused) {
  GLANCE_REQUIRE_CUDA();
  const Tensor p0 = to_gpu(random_tensor({1000, 3}, DType::Float32, 4)), g = to_gpu(random_tensor({1000, 3}, DType::Float32, 5));
  auto three_steps = [&](bool fusion) {
    FusionGuard guard(fusion);
    Tensor p = ops::clone(p0).set_requires_grad();
    AdamW opt({ParamGroup{{p}, 1e-2, 0.05}});
    for (int s = 0; s < 3; ++s) {
      p.set_grad(ops::binary(BinaryOp::Mul, g, double(s + 1)));
      opt.step();
    }
    return p.detach();
  };
  expect_near(three_steps(true), three_steps(false), 1e-6, "parameters after 3 steps");
}

}  // namespace
