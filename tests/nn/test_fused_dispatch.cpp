// The wiring of nn/fused.h, checked on the CPU: the test installs a CPU backend whose fused ops are float64
// loops (independent of the primitives nn composes otherwise) and count their calls. Then cross_entropy, Mlp,
// LayerNorm::add_and_norm (and so TransformerBlock) and AdamW must call them, give the unfused results (values
// and gradients), fall back when fusion is off, and the autograd nodes must pass gradcheck. The same loops
// check the Backend's default compositions (tensor/fused_default.cpp). The built-in CPU backend's own kernels
// (tensor/cpu/fused.cpp) go through the same nn paths and are compared with the composition (fusion off) too.
// The CUDA kernels themselves are compared with the unfused path on a GPU in tests/cuda/test_fused_nn.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/add_norm_testing.h"
#include "nn/backend_testing.h"
#include "nn/fused.h"
#include "nn/layer_norm.h"
#include "nn/loss.h"
#include "nn/mlp.h"
#include "nn/optim/adamw.h"
#include "nn/transformer.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;

std::vector<double> as_doubles(const Tensor& t) { return ops::to_dtype(t, DType::Float64).to_vector<double>(); }
Tensor like(const std::vector<double>& v, const Tensor& t) { return ops::to_dtype(ops::from_vector(v, t.shape()), t.dtype()); }

double gelu(double z) { return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))); }
double gelu_grad(double z) { return 0.5 * (1.0 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI); }

struct Calls {
  int cross_entropy = 0, bias_gelu = 0, bias_gelu_backward = 0, adamw = 0, residual_layer_norm = 0;
};

// A CPU backend whose fused ops are loops in float64, counting calls (the rest is the built-in CPU backend).
class LoopFusedCpu : public CpuBackend {
 public:
  explicit LoopFusedCpu(Calls* calls) : calls_(calls) {}
  bool has_fused(FusedOp) const override { return true; }

  SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels, double s) override {
    ++calls_->cross_entropy;
    const int64_t N = logits.size(0), C = logits.size(1);
    const std::vector<double> z = as_doubles(logits);
    const std::vector<int64_t> y = ops::to_dtype(labels, DType::Int64).to_vector<int64_t>();
    std::vector<double> loss(N), grad(N * C);
    for (int64_t i = 0; i < N; ++i) {
      double mx = -INFINITY, sum = 0, mean_logp = 0;
      for (int64_t j = 0; j < C; ++j) mx = std::max(mx, z[i * C + j]);
      for (int64_t j = 0; j < C; ++j) sum += std::exp(z[i * C + j] - mx);
      const double lse = mx + std::log(sum);
      for (int64_t j = 0; j < C; ++j) mean_logp += (z[i * C + j] - lse) / double(C);
      loss[i] = -(1 - s) * (z[i * C + y[i]] - lse) - s * mean_logp;
      for (int64_t j = 0; j < C; ++j) grad[i * C + j] = std::exp(z[i * C + j] - lse) - (1 - s) * (j == y[i]) - s / double(C);
    }
    return {ops::to_dtype(ops::from_vector(loss), logits.dtype()), like(grad, logits)};
  }

  Tensor bias_gelu(const Tensor& x, const Tensor& b) override {
    ++calls_->bias_gelu;
    const std::vector<double> xv = as_doubles(x), bv = as_doubles(b);
    std::vector<double> out(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) out[i] = gelu(xv[i] + bv[i % bv.size()]);
    return like(out, x);
  }

  Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& b) override {
    ++calls_->bias_gelu_backward;
    const std::vector<double> g = as_doubles(dy), xv = as_doubles(x), bv = as_doubles(b);
    std::vector<double> dx(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) dx[i] = g[i] * gelu_grad(xv[i] + bv[i % bv.size()]);
    return like(dx, x);
  }

  void adamw_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamWParams& h) override {
    ++calls_->adamw;
    std::vector<double> pv = as_doubles(p), gv = as_doubles(g), mv = as_doubles(m), vv = as_doubles(v);
    const double c1 = 1 - std::pow(h.beta1, double(h.step)), c2 = 1 - std::pow(h.beta2, double(h.step));
    for (size_t i = 0; i < pv.size(); ++i) {
      pv[i] *= 1 - h.lr * h.weight_decay;
      mv[i] = h.beta1 * mv[i] + (1 - h.beta1) * gv[i];
      vv[i] = h.beta2 * vv[i] + (1 - h.beta2) * gv[i] * gv[i];
      pv[i] -= h.lr / c1 * mv[i] / (std::sqrt(vv[i] / c2) + h.eps);
    }
    ops::copy_(p, like(pv, p)), ops::copy_(m, like(mv, m)), ops::copy_(v, like(vv, v));
  }

  ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b,
                                              double eps) override {
    ++calls_->residual_layer_norm;
    const int64_t C = x.size(-1), rows = x.numel() / C;
    const std::vector<double> xv = as_doubles(x), rv = as_doubles(r);
    const std::vector<double> wv = w.defined() ? as_doubles(w) : std::vector<double>(C, 1.0);
    const std::vector<double> bv = b.defined() ? as_doubles(b) : std::vector<double>(C, 0.0);
    std::vector<double> sum(xv.size()), out(xv.size()), mean(rows), rstd(rows);
    for (int64_t i = 0; i < rows; ++i) {
      double m = 0, var = 0;
      for (int64_t j = 0; j < C; ++j) m += (sum[i * C + j] = xv[i * C + j] + rv[i * C + j]) / double(C);
      for (int64_t j = 0; j < C; ++j) var += (sum[i * C + j] - m) * (sum[i * C + j] - m) / double(C);
      mean[i] = m, rstd[i] = 1.0 / std::sqrt(var + eps);
      for (int64_t j = 0; j < C; ++j) out[i * C + j] = (sum[i * C + j] - m) * rstd[i] * wv[j] + bv[j];
    }
    const Tensor stats_like = ops::zeros({rows}, x.dtype());
    return ResidualLayerNormResult{like(out, x), like(sum, x), like(mean, stats_like), like(rstd, stats_like)};
  }

 private:
  Calls* calls_;
};

// Installs the loop backend for the CPU while alive.
class CpuFusion {
 public:
  Calls calls;

 private:
  LoopFusedCpu backend_{&calls};
  glance::testing::ScopedCpuBackend installed_{&backend_};
};

void expect_near(const Tensor& a, const Tensor& b, double tol, const char* what) {
  const std::vector<double> x = as_doubles(a), y = as_doubles(b);
  ASSERT_EQ(x.size(), y.size()) << what;
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], tol) << what << " element " << i;
}

TEST(FusedDispatch, TheCpuBackendFusesEveryOpUnlessFusionIsOff) {
  for (FusedOp op : {FusedOp::BiasGelu, FusedOp::ResidualLayerNorm, FusedOp::SoftmaxCrossEntropy, FusedOp::AdamWStep}) {
    EXPECT_NE(fused_backend(Device::cpu(), op), nullptr);  // tensor/cpu/fused.cpp
    FusionGuard off(false);
    EXPECT_EQ(fused_backend(Device::cpu(), op), nullptr) << "fusion off";
  }
  CpuFusion fusion;
  EXPECT_NE(fused_backend(Device::cpu(), FusedOp::BiasGelu), nullptr);
  FusionGuard off(false);
  EXPECT_EQ(fused_backend(Device::cpu(), FusedOp::BiasGelu), nullptr) << "fusion off";
}

TEST(FusedDispatch, CrossEntropyTakesTheFusedKernelAndMatchesTheComposition) {
  Generator gen(3);
  const Tensor logits_value = ops::randn({6, 5}, DType::Float32, &gen);
  const Tensor labels = ops::from_vector(std::vector<int64_t>{0, 4, 2, 2, 1, 3});
  for (const double s : {0.0, 0.1}) {
    Tensor a = ops::clone(logits_value).set_requires_grad(), b = ops::clone(logits_value).set_requires_grad();
    Tensor c = ops::clone(logits_value).set_requires_grad();
    Tensor unfused;
    {
      FusionGuard off(false);  // the composition
      unfused = cross_entropy(a, labels, s);
      unfused.backward();
    }
    Tensor builtin = cross_entropy(c, labels, s);  // the built-in CPU backend's kernel (tensor/cpu/fused.cpp)
    builtin.backward();
    expect_near(builtin, unfused, 1e-6, "loss, built-in kernel");
    expect_near(c.grad(), a.grad(), 1e-6, "dlogits, built-in kernel");
    CpuFusion fusion;
    Tensor fused = cross_entropy(b, labels, s);
    fused.backward();
    EXPECT_EQ(fusion.calls.cross_entropy, 1);
    expect_near(fused, unfused, 1e-6, "loss");
    expect_near(b.grad(), a.grad(), 1e-6, "dlogits");
    // Only the mean goes through the fused node; the other reductions keep the composition.
    cross_entropy(b, labels, s, Reduction::Sum);
    EXPECT_EQ(fusion.calls.cross_entropy, 1);
    {
      FusionGuard off(false);
      cross_entropy(b, labels, s);
    }
    EXPECT_EQ(fusion.calls.cross_entropy, 1) << "fusion off: the composition";
  }
}

TEST(FusedDispatch, MlpTakesBiasGeluAndMatchesTheComposition) {
  manual_seed(5);
  Mlp mlp(8, 16, 0.0);
  Generator gen(4);
  const Tensor x_value = ops::randn({3, 4, 8}, DType::Float32, &gen);
  auto run = [&](Tensor* dx) {
    mlp.zero_grad();
    Tensor x = ops::clone(x_value).set_requires_grad();
    Tensor y = mlp.forward(x);
    sum(y * y).backward();  // any scalar with a non-uniform gradient
    *dx = x.grad();
    return std::vector<Tensor>{y.detach(), ops::clone(mlp.fc1->weight.grad()), ops::clone(mlp.fc1->bias.grad()),
                               ops::clone(mlp.fc2->weight.grad())};
  };
  Tensor dx_plain, dx_fused, dx_builtin;
  std::vector<Tensor> plain;
  {
    FusionGuard off(false);  // the composition
    plain = run(&dx_plain);
  }
  const std::vector<Tensor> builtin = run(&dx_builtin);  // the built-in CPU backend's kernels
  for (size_t i = 0; i < plain.size(); ++i) expect_near(builtin[i], plain[i], 2e-5, "built-in kernel");
  expect_near(dx_builtin, dx_plain, 2e-5, "x grad, built-in kernel");
  CpuFusion fusion;
  const std::vector<Tensor> fused = run(&dx_fused);
  EXPECT_EQ(fusion.calls.bias_gelu, 1);
  EXPECT_EQ(fusion.calls.bias_gelu_backward, 1);
  const char* names[] = {"output", "fc1.weight grad", "fc1.bias grad", "fc2.weight grad"};
  for (size_t i = 0; i < plain.size(); ++i) expect_near(fused[i], plain[i], 2e-5, names[i]);
  expect_near(dx_fused, dx_plain, 2e-5, "x grad");
}

// Both outputs are used downstream (the sum as the next residual, the norm as the MLP's input), so the loss weighs
// each by its own random tensor (nn/add_norm_testing.h): a gradient lost on either path shows.
TEST(FusedDispatch, AddAndNormTakesResidualLayerNormAndMatchesTheComposition) {
  LayerNorm norm(8);
  Generator gen(9);
  ops::copy_(norm.weight, ops::randn({8}, DType::Float32, &gen));
  ops::copy_(norm.bias, ops::randn({8}, DType::Float32, &gen));
  auto draw = [&] { return ops::randn({3, 4, 8}, DType::Float32, &gen); };
  const Tensor x_value = draw(), r_value = draw(), k_sum = draw(), k_norm = draw();
  std::vector<Tensor> plain;
  {
    FusionGuard off(false);  // the composition
    plain = glance::testing::add_and_norm_results(norm, x_value, r_value, k_sum, k_norm);
  }
  const std::vector<Tensor> builtin = glance::testing::add_and_norm_results(norm, x_value, r_value, k_sum, k_norm);
  for (size_t i = 0; i < plain.size(); ++i) expect_near(builtin[i], plain[i], 2e-5, "built-in kernel");
  CpuFusion fusion;
  const std::vector<Tensor> fused = glance::testing::add_and_norm_results(norm, x_value, r_value, k_sum, k_norm);
  EXPECT_EQ(fusion.calls.residual_layer_norm, 1);
  for (size_t i = 0; i < plain.size(); ++i) {
    expect_near(fused[i], plain[i], 2e-5, glance::testing::kAddAndNormResultNames[i]);
  }
  // A residual that only broadcasts ([1, 8] against [3, 4, 8]) is left to the composition, with the same result.
  const auto [s_bcast, n_bcast] = norm.add_and_norm(x_value, ops::narrow(ops::reshape(r_value, {12, 8}), 0, 0, 1));
  EXPECT_EQ(fusion.calls.residual_layer_norm, 1) << "a broadcast residual took the fused kernel";
  EXPECT_EQ(s_bcast.shape(), (Shape{3, 4, 8}));
  {
    FusionGuard off(false);
    norm.add_and_norm(x_value, r_value);
  }
  EXPECT_EQ(fusion.calls.residual_layer_norm, 1) << "fusion off: the composition";
  // Without affine parameters (weight and bias undefined) it fuses too, and still equals the composition.
  LayerNorm plain_norm(8, 1e-5, /*affine=*/false);
  const auto [s_fused, n_fused] = plain_norm.add_and_norm(x_value, r_value);
  EXPECT_EQ(fusion.calls.residual_layer_norm, 2);
  FusionGuard off(false);
  const auto [s_plain, n_plain] = plain_norm.add_and_norm(x_value, r_value);
  expect_near(s_fused, s_plain, 2e-5, "sum, no affine");
  expect_near(n_fused, n_plain, 2e-5, "norm, no affine");
}

// TransformerBlock's second add & norm goes through LayerNorm::add_and_norm: one fused call per forward, and the
// block's output and every parameter's gradient as without fusion.
TEST(FusedDispatch, TransformerBlockUsesAddAndNorm) {
  manual_seed(11);
  BlockConfig c;
  c.dim = 8;
  c.heads = 2;
  TransformerBlock block(c);
  Generator gen(12);
  const Tensor x_value = ops::randn({10, 8}, DType::Float32, &gen), k = ops::randn({10, 8}, DType::Float32, &gen);
  const TokenLayout layout = TokenLayout::from_counts({4, 6});
  auto run = [&] {
    block.zero_grad();
    Tensor x = ops::clone(x_value).set_requires_grad();
    Tensor y = block.forward(x, layout);
    sum(y * k).backward();
    std::vector<Tensor> out{y.detach(), x.grad()};
    for (auto& [name, p] : block.named_parameters()) out.push_back(ops::clone(p.grad()));
    return out;
  };
  std::vector<Tensor> plain;
  {
    FusionGuard off(false);  // the composition
    plain = run();
  }
  const std::vector<Tensor> builtin = run();  // the built-in CPU backend's kernels
  for (size_t i = 0; i < plain.size(); ++i) expect_near(builtin[i], plain[i], 2e-5, "built-in kernel");
  CpuFusion fusion;
  const std::vector<Tensor> fused = run();
  EXPECT_EQ(fusion.calls.residual_layer_norm, 1);
  ASSERT_EQ(fused.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) expect_near(fused[i], plain[i], 2e-5, i == 0 ? "output" : "a gradient");
}

TEST(FusedDispatch, AdamWTakesTheFusedStepAndMatchesTheComposition) {
  Generator gen(6);
  const Tensor p0 = ops::randn({4, 3}, DType::Float32, &gen), g = ops::randn({4, 3}, DType::Float32, &gen);
  auto three_steps = [&] {
    Tensor p = ops::clone(p0).set_requires_grad();
    AdamW opt({ParamGroup{{p}, 1e-2, 0.05}});
    for (int s = 0; s < 3; ++s) {
      p.set_grad(ops::binary(BinaryOp::Mul, g, double(s + 1)));
      opt.step();
    }
    return p.detach();
  };
  Tensor plain;
  {
    FusionGuard off(false);  // the composition
    plain = three_steps();
  }
  expect_near(three_steps(), plain, 1e-6, "parameters after 3 steps, built-in kernel");
  CpuFusion fusion;
  const Tensor fused = three_steps();
  EXPECT_EQ(fusion.calls.adamw, 3);
  expect_near(fused, plain, 1e-6, "parameters after 3 steps");
  expect_near(fused, p0, 1.0, "sanity");  // moved, but not wildly
  EXPECT_GT(std::fabs(as_doubles(fused)[0] - as_doubles(p0)[0]), 1e-3) << "the steps did something";
}

TEST(FusedDispatch, TheFusedNodesPassGradcheck) {
  CpuFusion fusion;
  Backend& k = *fused_backend(Device::cpu(), FusedOp::BiasGelu);
  Generator gen(8);
  const Tensor x = ops::randn({3, 5}, DType::Float64, &gen).set_requires_grad(), b = ops::randn({5}, DType::Float64, &gen).set_requires_grad();
  const auto gelu_check = autograd::gradcheck([&](const std::vector<Tensor>& in) { return fused_bias_gelu(k, in[0], in[1]); }, {x, b});
  EXPECT_TRUE(gelu_check.ok) << gelu_check.message;
  const Tensor labels = ops::from_vector(std::vector<int64_t>{1, 0, 4});
  const auto ce_check = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return fused_cross_entropy_mean(k, in[0], labels, 0.2); }, {x});
  EXPECT_TRUE(ce_check.ok) << ce_check.message;
  // Both nodes of the fused add & norm, through a function that uses both outputs.
  const Tensor r = ops::randn({3, 5}, DType::Float64, &gen).set_requires_grad();
  const Tensor w = ops::randn({5}, DType::Float64, &gen).set_requires_grad();
  const Tensor k_sum = ops::randn({3, 5}, DType::Float64, &gen);
  const auto norm_check = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) {
        const auto [s, n] = fused_residual_layer_norm(k, in[0], in[1], in[2], in[3], 1e-5);
        return s * k_sum + n;
      },
      {x, r, w, b});
  EXPECT_TRUE(norm_check.ok) << norm_check.message;
}

// The Backend's default compositions (tensor/fused_default.cpp; the built-in CPU backend does not override
// them) against the loops.
TEST(FusedDefaults, EachDefaultCompositionEqualsTheLoop) {
  Calls calls;
  LoopFusedCpu loops(&calls);
  Backend& composed = backend_for(Device::cpu());
  Generator gen(21);
  const Tensor x = ops::randn({6, 5}, DType::Float64, &gen), r = ops::randn({6, 5}, DType::Float64, &gen);
  const Tensor w = ops::randn({5}, DType::Float64, &gen), b = ops::randn({5}, DType::Float64, &gen);
  expect_near(composed.bias_gelu(x, b), loops.bias_gelu(x, b), 1e-12, "bias_gelu");
  expect_near(composed.bias_gelu_backward(r, x, b), loops.bias_gelu_backward(r, x, b), 1e-12, "bias_gelu_backward");
  for (const Tensor& weight : {w, Tensor()}) {
    const Tensor bias = weight.defined() ? b : Tensor();
    const ResidualLayerNormResult got = composed.residual_layer_norm(x, r, weight, bias, 1e-5);
    const ResidualLayerNormResult want = loops.residual_layer_norm(x, r, weight, bias, 1e-5);
    expect_near(got.sum, want.sum, 1e-12, "sum");
    expect_near(got.out, want.out, 1e-12, "out");
    expect_near(got.mean, want.mean, 1e-12, "mean");
    expect_near(got.rstd, want.rstd, 1e-9, "rstd");
  }
  const Tensor labels = ops::from_vector(std::vector<int64_t>{0, 4, 2, 2, 1, 3});
  for (const double s : {0.0, 0.2}) {
    const SoftmaxCrossEntropyResult got = composed.softmax_cross_entropy(x, labels, s);
    const SoftmaxCrossEntropyResult want = loops.softmax_cross_entropy(x, labels, s);
    expect_near(got.loss, want.loss, 1e-12, "loss");
    expect_near(got.dlogits, want.dlogits, 1e-12, "dlogits");
  }
  // A label outside [0, C): that row's loss and gradients are NaN, the others untouched.
  const SoftmaxCrossEntropyResult bad =
      composed.softmax_cross_entropy(x, ops::from_vector(std::vector<int64_t>{0, 5, 2, -1, 1, 3}), 0.0);
  const std::vector<double> loss = as_doubles(bad.loss), grad = as_doubles(bad.dlogits);
  for (int64_t i = 0; i < 6; ++i) {
    const bool invalid = i == 1 || i == 3;
    EXPECT_EQ(std::isnan(loss[i]), invalid) << "row " << i;
    for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(std::isnan(grad[i * 5 + j]), invalid) << "row " << i;
  }
  const Tensor g = ops::randn({6, 5}, DType::Float64, &gen);
  Tensor p1 = ops::clone(x), m1 = ops::clone(r), v1 = ops::unary(UnaryOp::Abs, r);
  Tensor p2 = ops::clone(p1), m2 = ops::clone(m1), v2 = ops::clone(v1);
  const AdamWParams h{1e-2, 0.9, 0.99, 1e-8, 0.05, 3};
  composed.adamw_step(p1, g, m1, v1, h);
  loops.adamw_step(p2, g, m2, v2, h);
  expect_near(p1, p2, 1e-12, "param");
  expect_near(m1, m2, 1e-12, "m");
  expect_near(v1, v2, 1e-12, "v");
  EXPECT_EQ(calls.adamw, 1);
}

}  // namespace
