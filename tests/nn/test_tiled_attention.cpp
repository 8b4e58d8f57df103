// The CPU backend's attention kernels against the rung below them, the plain reference: the tiled
// (FlashAttention-style) kernel (tensor/cpu/attention_tiled.cpp) with the same outputs and gradients on a
// ragged pack (clips of 1, 7, 64, 197 and 1568 tokens: partial blocks, single-token clips, many blocks per
// clip), against float64 masked attention, and float64 central differences (gradcheck); the backend's choice
// between it and the materialised kernel; and the Backend's default composition (tensor/attention_default.cpp).
// The kernels are reached as the attention layers reach them, through nn::attention_kernel and the Backend;
// a test backend (TiledCpu) forces the tiled kernel and its block sizes. New memory is poisoned (NaN) while the
// kernels run, so an element a kernel forgets to write fails the comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attention_testing.h"
#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "nn/attention/kernel.h"
#include "nn/backend_testing.h"
#include "tensor/cpu/attention.h"
#include "tensor/ops.h"
#include "tensor/poison.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;

std::vector<double> values(const Tensor& t) {
  const Tensor c = ops::contiguous(ops::to_dtype(t, DType::Float64));
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = values(a), y = values(b);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double diff = std::abs(x[i] - y[i]);
    if (!(diff <= worst)) worst = diff;  // a NaN (an unwritten, poisoned element) becomes the worst
  }
  return worst;
}

// The CPU backend with the tiled kernel for every pack, at the given block sizes.
class TiledCpu : public CpuBackend {
 public:
  explicit TiledCpu(cpu::TiledBlocks blocks = {}) : blocks_(blocks) {}
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionClips& clips,
                                           const AttentionOptions& options) override {
    return cpu::tiled_attention_forward(q, k, v, clips.offsets, options.scale, blocks_);
  }
  AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionForwardResult& forward, const AttentionClips& clips,
                                        const AttentionOptions& options) override {
    return cpu::tiled_attention_backward(dout, q, k, v, forward, clips.offsets, options.scale, blocks_);
  }

 private:
  cpu::TiledBlocks blocks_;
};

// The CPU backend with the Backend's default attention (the composition of primitives).
class DefaultAttentionCpu : public CpuBackend {
 public:
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionClips& clips,
                                           const AttentionOptions& options) override {
    return Backend::attention_forward(q, k, v, clips, options);
  }
  AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionForwardResult& forward, const AttentionClips& clips,
                                        const AttentionOptions& options) override {
    return Backend::attention_backward(dout, q, k, v, forward, clips, options);
  }
};

Tensor tiled_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
  return attention_kernel("tiled")(q, k, v, layout, scale);
}

struct Qkv {
  Tensor q, k, v;
};

Qkv random_qkv(int64_t heads, int64_t n, int64_t d, DType dtype, uint64_t seed) {
  Generator gen(seed);
  Qkv r{normal({heads, n, d}, 0, 1, dtype, &gen), normal({heads, n, d}, 0, 1, dtype, &gen),
        normal({heads, n, d}, 0, 1, dtype, &gen)};
  r.q.set_requires_grad(true), r.k.set_requires_grad(true), r.v.set_requires_grad(true);
  return r;
}

TEST(TiledAttention, RaggedPackMatchesReferenceValuesAndGradients) {
  TiledCpu tiled;
  glance::testing::ScopedCpuBackend installed(&tiled);
  const TokenLayout layout = TokenLayout::from_counts({1, 7, 64, 197, 1568});
  const int64_t H = 2, d = 32, N = layout.total_tokens();
  PoisonNewMemory poison;  // outputs and gradients start as NaN
  const double scale = 1.0 / std::sqrt(double(d));
  Qkv a = random_qkv(H, N, d, DType::Float32, 1);
  Qkv b{ops::clone(a.q), ops::clone(a.k), ops::clone(a.v)};
  b.q.set_requires_grad(true), b.k.set_requires_grad(true), b.v.set_requires_grad(true);
  const Tensor ref = reference_attention(a.q, a.k, a.v, layout, scale);
  const Tensor got = tiled_attention(b.q, b.k, b.v, layout, scale);
  EXPECT_LT(max_abs_diff(ref, got), 2e-5);
  Generator gen(9);
  const Tensor w = normal({H, N, d}, 0, 1, DType::Float32, &gen);
  sum(ref * w).backward();
  sum(got * w).backward();
  EXPECT_LT(max_abs_diff(a.q.grad(), b.q.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(a.k.grad(), b.k.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(a.v.grad(), b.v.grad()), 1e-4);
}

TEST(TiledAttention, LongClipMatchesReference) {
  // One clip of 1568 tokens (RLT's dense 8 x 14 x 14 grid): 25 x 25 blocks.
  TiledCpu tiled;
  glance::testing::ScopedCpuBackend installed(&tiled);
  const TokenLayout layout = TokenLayout::from_counts({1568});
  Qkv a = random_qkv(1, 1568, 16, DType::Float32, 2);
  PoisonNewMemory poison;
  const Tensor ref = ops::contiguous(reference_attention(a.q, a.k, a.v, layout, 0.25));
  const Tensor got = ops::contiguous(tiled_attention(a.q, a.k, a.v, layout, 0.25));
  EXPECT_LT(max_abs_diff(ref, got), 2e-5);
}

TEST(TiledAttention, Float64EqualsMaskedAttentionLoop) {
  // The third formulation: a float64 softmax loop with a block-diagonal mask (tests/nn/attention_testing.h).
  TiledCpu tiled;
  glance::testing::ScopedCpuBackend installed(&tiled);
  const TokenLayout layout = TokenLayout::from_counts({1, 7, 64, 197, 300});
  Qkv a = random_qkv(2, layout.total_tokens(), 8, DType::Float64, 4);
  PoisonNewMemory poison;
  const Tensor got = tiled_attention(a.q, a.k, a.v, layout, 0.3);
  const std::vector<int64_t> clip = glance::testing::clip_ids(layout);
  const std::vector<double> expected = glance::testing::masked_attention_f64(
      a.q, a.k, a.v, 0.3, [&](int64_t i, int64_t j) { return clip[i] == clip[j]; });
  glance::testing::expect_all_close(values(got), expected, 1e-12, "tiled float64 vs loop");
}

TEST(TiledAttention, Gradcheck) {
  // Tiny blocks (4 query rows, 8 keys, 4 in the backward), so a clip of 3 and one of 37 tokens cross many
  // block edges, full and partial.
  TiledCpu tiled(cpu::TiledBlocks{4, 8, 4});
  glance::testing::ScopedCpuBackend installed(&tiled);
  const TokenLayout layout = TokenLayout::from_counts({3, 37});
  Qkv a = random_qkv(1, 40, 3, DType::Float64, 3);
  const auto r = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return tiled_attention(in[0], in[1], in[2], layout, 0.5); },
      {a.q, a.k, a.v});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(TiledAttention, RejectsBadInput) {
  const TokenLayout layout = TokenLayout::from_counts({4});
  EXPECT_THROW(tiled_attention(ops::zeros({2, 5, 4}), ops::zeros({2, 5, 4}), ops::zeros({2, 5, 4}), layout, 1.0),
               std::invalid_argument);
  EXPECT_THROW(tiled_attention(ops::zeros({1, 4, 4}, DType::Int64), ops::zeros({1, 4, 4}, DType::Int64),
                               ops::zeros({1, 4, 4}, DType::Int64), layout, 1.0),
               std::invalid_argument);
  EXPECT_THROW(cpu::tiled_attention_forward(ops::zeros({1, 4, 4}), ops::zeros({1, 4, 4}), ops::zeros({1, 4, 4}),
                                            {0, 4}, 1.0, cpu::TiledBlocks{0, 8, 4}),
               std::invalid_argument);
}

// The CPU backend takes the tiled kernel when the longest clip has kTiledFromTokens tokens or more, the
// materialised one below: the same bits as the kernel it should have taken.
TEST(CpuBackendAttention, PicksTheKernelByTheLongestClip) {
  for (const std::vector<int64_t>& counts : {std::vector<int64_t>{3, 300, 40}, std::vector<int64_t>{3, 1030, 40}}) {
    const TokenLayout layout = TokenLayout::from_counts(counts);
    const Qkv a = random_qkv(2, layout.total_tokens(), 8, DType::Float32, 5);
    const std::vector<double> got = values(attention_kernel("device")(a.q, a.k, a.v, layout, 0.3));
    const bool tiled = counts[1] >= cpu::kTiledFromTokens;
    const AttentionForwardResult want =
        tiled ? cpu::tiled_attention_forward(a.q.detach(), a.k.detach(), a.v.detach(), layout.offsets(), 0.3)
              : cpu::materialised_attention_forward(a.q.detach(), a.k.detach(), a.v.detach(), layout.offsets(), 0.3);
    EXPECT_EQ(got, values(want.out)) << (tiled ? "tiled" : "materialised");
  }
}

// The Backend's default attention, what a device without its own kernel gets: values and gradients of the
// reference on a ragged pack (with an empty clip), and float64 central differences.
TEST(DefaultAttention, MatchesReferenceValuesAndGradientsAndPassesGradcheck) {
  DefaultAttentionCpu composed;
  glance::testing::ScopedCpuBackend installed(&composed);
  PoisonNewMemory poison;
  const TokenLayout layout = TokenLayout::from_counts({5, 0, 17, 1, 33});
  Qkv a = random_qkv(2, layout.total_tokens(), 8, DType::Float32, 6);
  Qkv b{ops::clone(a.q), ops::clone(a.k), ops::clone(a.v)};
  b.q.set_requires_grad(true), b.k.set_requires_grad(true), b.v.set_requires_grad(true);
  const Tensor ref = reference_attention(a.q, a.k, a.v, layout, 0.4);
  const Tensor got = attention_kernel("device")(b.q, b.k, b.v, layout, 0.4);
  EXPECT_LT(max_abs_diff(ref, got), 2e-6);
  Generator gen(10);
  const Tensor w = normal(ref.shape(), 0, 1, DType::Float32, &gen);
  sum(ref * w).backward();
  sum(got * w).backward();
  EXPECT_LT(max_abs_diff(a.q.grad(), b.q.grad()), 1e-5);
  EXPECT_LT(max_abs_diff(a.k.grad(), b.k.grad()), 1e-5);
  EXPECT_LT(max_abs_diff(a.v.grad(), b.v.grad()), 1e-5);
  const TokenLayout small = TokenLayout::from_counts({3, 4});
  Qkv c = random_qkv(1, 7, 3, DType::Float64, 7);
  const auto r = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return attention_kernel("device")(in[0], in[1], in[2], small, 0.5); },
      {c.q, c.k, c.v});
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
