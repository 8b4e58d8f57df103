// The tiled (FlashAttention-style) CPU kernel against the rung below it, the reference kernel: same
// outputs and same gradients on a ragged pack (clips of 1, 7, 64, 197 and 1568 tokens: partial blocks,
// single-token clips, many blocks per clip), against float64 masked attention, and float64 central
// differences (gradcheck). New memory is poisoned (NaN) while the kernels run, so an element a kernel
// forgets to write fails the comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attention_testing.h"
#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "nn/attention/kernel.h"
#include "nn/attention/tiled_cpu.h"
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
  const TokenLayout layout = TokenLayout::from_counts({1568});
  Qkv a = random_qkv(1, 1568, 16, DType::Float32, 2);
  PoisonNewMemory poison;
  const Tensor ref = ops::contiguous(reference_attention(a.q, a.k, a.v, layout, 0.25));
  const Tensor got = ops::contiguous(tiled_attention(a.q, a.k, a.v, layout, 0.25));
  EXPECT_LT(max_abs_diff(ref, got), 2e-5);
}

TEST(TiledAttention, Float64EqualsMaskedAttentionLoop) {
  // The third formulation: a float64 softmax loop with a block-diagonal mask (tests/nn/attention_testing.h).
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
  const TokenLayout layout = TokenLayout::from_counts({3, 37});
  Qkv a = random_qkv(1, 40, 3, DType::Float64, 3);
  const auto r = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return tiled_attention(in[0], in[1], in[2], layout, 0.5, TiledBlocks{4, 8, 4});
      },
      {a.q, a.k, a.v});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(TiledAttention, IsRegisteredAndRejectsBadInput) {
  const TokenLayout layout = TokenLayout::from_counts({4});
  EXPECT_NO_THROW(attention_kernel("tiled"));
  EXPECT_THROW(tiled_attention(ops::zeros({2, 5, 4}), ops::zeros({2, 5, 4}), ops::zeros({2, 5, 4}), layout, 1.0),
               std::invalid_argument);
  EXPECT_THROW(tiled_attention(ops::zeros({1, 4, 4}, DType::Int64), ops::zeros({1, 4, 4}, DType::Int64),
                               ops::zeros({1, 4, 4}, DType::Int64), layout, 1.0),
               std::invalid_argument);
}

}  // namespace
