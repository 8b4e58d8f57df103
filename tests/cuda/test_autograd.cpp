// Autograd runs unchanged on the GPU: the same differentiable functions, the same backward rules, only the
// tensors' device differs. A small network (linear, GELU, layer norm, attention-like softmax, embedding lookup,
// cross-entropy) runs forward and backward on both devices and the gradients must agree; and gradients flow
// back across a to_device() from a CUDA graph to a CPU leaf.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "autograd/glance.h"
#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

struct Params {
  std::map<std::string, Tensor> t;
};

Params make_params(DType d) {
  Params p;
  p.t["embed"] = random_tensor({20, 16}, d, 1, -1, 1);
  p.t["w1"] = random_tensor({16, 32}, d, 2, -0.3, 0.3);
  p.t["b1"] = random_tensor({32}, d, 3, -0.1, 0.1);
  p.t["gamma"] = random_tensor({32}, d, 4, 0.8, 1.2);
  p.t["beta"] = random_tensor({32}, d, 5, -0.1, 0.1);
  p.t["w2"] = random_tensor({32, 5}, d, 6, -0.3, 0.3);
  return p;
}

// Copies of the parameters on `device`, as leaves that require grad.
Params on_device(const Params& p, Device device) {
  Params out;
  for (const auto& [name, t] : p.t) {
    Tensor c = ops::clone(ops::to_device(t, device));
    c.set_requires_grad();
    out.t[name] = c;
  }
  return out;
}

// tokens [B, T] -> embeddings -> MLP with layer norm -> self-attention-like mixing -> mean over T -> logits.
Tensor forward(Params& p, const Tensor& tokens, const Tensor& labels) {
  const int64_t B = tokens.shape()[0], T = tokens.shape()[1];
  Tensor x = reshape(index_select(p.t["embed"], 0, reshape(tokens, {-1})), {B, T, 16});
  Tensor h = gelu(matmul(x, p.t["w1"]) + p.t["b1"]);                       // [B, T, 32]
  h = layer_norm(h, p.t["gamma"], p.t["beta"]);
  Tensor scores = matmul(h, transpose(h, 1, 2)) * (1.0 / std::sqrt(32.0));  // [B, T, T]
  Tensor mixed = matmul(softmax(scores, -1), h);                           // [B, T, 32]
  Tensor pooled = mean(mixed, {1});                                        // [B, 32]
  Tensor logits = matmul(pooled, p.t["w2"]);                               // [B, 5]
  Tensor logp = log_softmax(logits, 1);
  Tensor picked = gather(logp, 1, unsqueeze(labels, 1));
  return -mean(picked) + 0.01 * sum(max(logits, {1}));                    // max: a gradient through ties/argmax
}

}  // namespace

TEST(CudaAutograd, SmallNetworkForwardAndBackwardMatchTheCpu) {
  GLANCE_REQUIRE_CUDA();
  for (DType d : {DType::Float32, DType::Float64}) {
    const Params base = make_params(d);
    Generator gen(77);
    Tensor tokens = ops::randint(0, 20, {4, 7}, &gen), labels = ops::randint(0, 5, {4}, &gen);

    Params pc = on_device(base, Device::cpu());
    Tensor loss_c = forward(pc, tokens, labels);
    loss_c.backward();

    // The token index on the GPU, and left on the host (index_select moves it once, for forward and backward).
    for (bool host_index : {false, true}) {
      Params pg = on_device(base, gpu());
      Tensor loss_g = forward(pg, host_index ? tokens : to_gpu(tokens), to_gpu(labels));
      EXPECT_TRUE(loss_g.device().is_cuda());
      loss_g.backward();

      const double t = d == DType::Float32 ? 1e-4 : 1e-10;
      const std::string what = std::string(dtype_name(d)) + (host_index ? ", host index" : ", device index");
      expect_close(loss_c, loss_g, t, t, "loss " + what);
      for (const auto& [name, leaf] : pc.t) {
        ASSERT_TRUE(pg.t[name].grad().defined()) << name;
        EXPECT_TRUE(pg.t[name].grad().device().is_cuda()) << name;
        expect_close(leaf.grad(), pg.t[name].grad(), t, t, "grad of " + name + " " + what);
      }
    }
  }
}

TEST(CudaAutograd, HostIndexOutOfRangeIsNamedBeforeAnyUpload) {
  GLANCE_REQUIRE_CUDA();
  Tensor table = ops::to_device(ops::zeros({20, 4}), gpu());
  table.set_requires_grad();
  try {
    index_select(table, 0, ops::from_vector(std::vector<int64_t>{3, 20, 1}));
    FAIL() << "no error";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("index_select: index 20 is out of range for size 20"), std::string::npos)
        << e.what();
  }
}

// gather and scatter_add with their index on the GPU, or left on the host (the autograd op checks it there and
// moves it once, for forward and backward), or vouched for (AlreadyChecked): the values and gradients of the
// CPU, in float64. Repeated indices make the backward's scatter_add accumulate.
TEST(CudaAutograd, GatherAndScatterAddWithAHostOrDeviceIndexMatchTheCpu) {
  GLANCE_REQUIRE_CUDA();
  const Tensor x0 = random_tensor({3, 4}, DType::Float64, 21), src0 = random_tensor({2, 4}, DType::Float64, 22);
  const Tensor weight = random_tensor({2, 4}, DType::Float64, 23);  // makes each output element's gradient differ
  const Tensor index = ops::from_vector(std::vector<int64_t>{2, 0, 2, 1, 0, 0, 2, 1}, {2, 4});
  auto run = [&](Device device, const Tensor& idx, ops::IndexCheck check) {
    Tensor x = ops::clone(ops::to_device(x0, device)), src = ops::clone(ops::to_device(src0, device));
    x.set_requires_grad(), src.set_requires_grad();
    const Tensor w = ops::to_device(weight, device);
    Tensor picked = glance::gather(x, 0, idx, check);                    // [2, 4]
    Tensor spread = glance::scatter_add(x, 0, idx, src * picked, check);  // [3, 4]
    Tensor loss = sum(picked * w) + sum(spread * spread);
    loss.backward();
    return std::vector<Tensor>{loss, x.grad(), src.grad()};
  };
  const std::vector<Tensor> cpu = run(Device::cpu(), index, ops::IndexCheck::Bounds);
  const Tensor on_gpu = ops::to_device(index, gpu());
  const struct { const char* what; Tensor idx; ops::IndexCheck check; } cases[] = {
      {"device index", on_gpu, ops::IndexCheck::Bounds},
      {"host index", index, ops::IndexCheck::Bounds},
      {"host index, already checked", index, ops::IndexCheck::AlreadyChecked},
      {"device index, already checked", on_gpu, ops::IndexCheck::AlreadyChecked}};
  for (const auto& c : cases) {
    const std::vector<Tensor> g = run(gpu(), c.idx, c.check);
    expect_close(cpu[0], g[0], 1e-12, 1e-12, std::string("loss, ") + c.what);
    expect_close(cpu[1], g[1], 1e-12, 1e-12, std::string("x's gradient, ") + c.what);
    expect_close(cpu[2], g[2], 1e-12, 1e-12, std::string("src's gradient, ") + c.what);
  }
  // A host index out of range is named (by the check on the host).
  const Tensor x = ops::to_device(x0, gpu());
  try {
    glance::gather(x, 0, ops::from_vector(std::vector<int64_t>{0, 3, 1, 0}, {1, 4}));
    FAIL() << "no error";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("gather: index 3 is out of range for size 3"), std::string::npos) << e.what();
  }
}

TEST(CudaAutograd, GradientFlowsBackAcrossToDevice) {
  GLANCE_REQUIRE_CUDA();
  Tensor x = random_tensor({3, 4}, DType::Float64, 9);
  x.set_requires_grad();
  Tensor y = sum(exp(to_device(x, gpu())) * 2.0);  // computed on the GPU
  y.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(x.grad().device().is_cpu());
  expect_close(ops::binary(BinaryOp::Mul, ops::unary(UnaryOp::Exp, x), 2.0), x.grad(), 1e-12, 1e-12, "d/dx sum(2 e^x)");
}

TEST(CudaAutograd, ViewsAndBroadcastingGradients) {
  GLANCE_REQUIRE_CUDA();
  Tensor a = random_tensor({4, 1, 6}, DType::Float64, 10), b = random_tensor({5, 1}, DType::Float64, 11);
  auto run = [](Tensor a_leaf, Tensor b_leaf) {
    Tensor y = (a_leaf * b_leaf - b_leaf / 3.0);                    // broadcast to [4, 5, 6]
    y = permute(y, {2, 0, 1});                                       // [6, 4, 5]
    Tensor s = slice(y, 0, 1, 6, 2);                                 // [3, 4, 5], step 2
    return sum(sigmoid(s) * tanh(s)) + sum(scatter_add(zeros_like(a_leaf), 0,
                                                       ops::zeros({2, 1, 6}, DType::Int64, a_leaf.device()),
                                                       narrow(a_leaf, 0, 1, 2)));
  };
  Tensor ac = ops::clone(a), bc = ops::clone(b);
  ac.set_requires_grad();
  bc.set_requires_grad();
  run(ac, bc).backward();
  Tensor ag = to_gpu(a), bg = to_gpu(b);
  ag.set_requires_grad();
  bg.set_requires_grad();
  run(ag, bg).backward();
  expect_close(ac.grad(), ag.grad(), 1e-12, 1e-12, "grad of a");
  expect_close(bc.grad(), bg.grad(), 1e-12, 1e-12, "grad of b");
}
