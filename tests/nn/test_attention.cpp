// Attention over packed clips. The key properties:
//  (a) running the layer on a pack of clips equals running it on each clip alone (values and gradients);
//  (b) reference_attention equals a float64 softmax(q k^T * scale) v loop per clip, with no leakage, and
//      gives the same bits on any number of threads;
//  (c)/(d) the kernel registry: unknown names are rejected listing the known ones, custom kernels are used;
//  (e) TokenLayout's coordinates, offsets, clip ids and validation.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "nn/attention/kernel.h"
#include "nn/attention/multi_head.h"
#include "nn/backend_testing.h"
#include "nn/expect_throw.h"
#include "nn/token_layout.h"
#include "nn/transformer.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::expect_throw_containing;

void expect_close(const std::vector<float>& got, const std::vector<float>& expected, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::abs(double(got[i]) - double(expected[i])) / std::max(1.0, std::abs(double(expected[i])));
    if (err > worst) worst = err, where = i;
  }
  EXPECT_LE(worst, tol) << what << ": worst error at " << where << ": " << got[where] << " vs " << expected[where];
}

std::vector<float> rows_of(const std::vector<float>& v, int64_t start, int64_t count, int64_t width) {
  return std::vector<float>(v.begin() + start * width, v.begin() + (start + count) * width);
}

// softmax(q k^T * scale) v in float64, clip by clip and head by head. q, k, v: [H, N, d] row-major.
std::vector<double> attention_by_hand(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                      int64_t H, int64_t d, const std::vector<int64_t>& counts, double scale) {
  int64_t N = 0;
  for (int64_t c : counts) N += c;
  std::vector<double> out(H * N * d, 0.0);
  for (int64_t h = 0; h < H; ++h) {
    int64_t start = 0;
    for (int64_t n : counts) {
      for (int64_t i = start; i < start + n; ++i) {
        std::vector<double> s(n);
        double m = -1e300;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += double(q[(h * N + i) * d + e]) * double(k[(h * N + start + j) * d + e]);
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (double& x : s) z += (x = std::exp(x - m));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t e = 0; e < d; ++e) out[(h * N + i) * d + e] += s[j] / z * double(v[(h * N + start + j) * d + e]);
      }
      start += n;
    }
  }
  return out;
}

// ---------------------------------------------------------------- (a) packed == each clip alone

TEST(Attention, PackedClipsEqualEachClipAloneValuesAndGradients) {
  const int64_t D = 8, H = 2;
  const std::vector<int64_t> counts = {1, 7, 13};
  manual_seed(2024);
  MultiHeadSelfAttention attn(D, H);
  TokenLayout layout = TokenLayout::from_counts(counts);
  ASSERT_EQ(layout.total_tokens(), 21);
  Tensor x_values = ops::randn({21, D});
  Tensor g = ops::randn({21, D});  // upstream gradient: loss = sum(out * g)

  // The packed run.
  Tensor x = ops::clone(x_values).set_requires_grad();
  Tensor out = attn.forward(x, layout);
  ASSERT_EQ(out.shape(), (Shape{21, D}));
  sum(out * g).backward();
  auto packed_out = out.to_vector<float>();
  auto packed_dx = x.grad().to_vector<float>();
  auto packed_dqkv = attn.qkv->weight.grad().to_vector<float>();
  auto packed_dqkv_bias = attn.qkv->bias.grad().to_vector<float>();
  auto packed_dproj = attn.proj->weight.grad().to_vector<float>();

  // Each clip alone, gradients accumulating over the three runs.
  attn.zero_grad();
  int64_t start = 0;
  for (int64_t n : counts) {
    Tensor xb = ops::clone(ops::narrow(x_values, 0, start, n)).set_requires_grad();
    Tensor ob = attn.forward(xb, TokenLayout::from_counts({n}));
    sum(ob * ops::narrow(g, 0, start, n)).backward();
    std::string what = "clip of " + std::to_string(n) + " tokens";
    expect_close(rows_of(packed_out, start, n, D), ob.to_vector<float>(), 1e-5, what + ": output");
    expect_close(rows_of(packed_dx, start, n, D), xb.grad().to_vector<float>(), 1e-5, what + ": d x");
    start += n;
  }
  expect_close(attn.qkv->weight.grad().to_vector<float>(), packed_dqkv, 2e-5, "d qkv.weight");
  expect_close(attn.qkv->bias.grad().to_vector<float>(), packed_dqkv_bias, 2e-5, "d qkv.bias");
  expect_close(attn.proj->weight.grad().to_vector<float>(), packed_dproj, 2e-5, "d proj.weight");

  // A lone token attends only to itself: its attention output is its own v, so out = proj(v).
  // (Checked through the layer: the single-token clip's output does not depend on any other token.)
  Tensor x_changed = ops::clone(x_values);
  ops::fill_(ops::narrow(x_changed, 0, 1, 20), 5.0);
  auto changed = attn.forward(x_changed, layout).to_vector<float>();
  EXPECT_EQ(rows_of(changed, 0, 1, D), rows_of(packed_out, 0, 1, D));
}

TEST(Attention, DenseLayoutAndCountsLayoutAgreeAndBlocksPreserveClips) {
  // The reference kernel reads only the clip boundaries, so a dense 2-clip layout of a 2x2x2 grid and
  // from_counts({8, 8}) give the same output; a whole transformer block keeps clips apart too.
  manual_seed(7);
  BlockConfig c;
  c.dim = 8;
  c.heads = 2;
  TransformerBlock block(c);
  Tensor x = ops::randn({16, 8});
  auto dense = block.forward(x, TokenLayout::dense(2, Grid{2, 2, 2})).to_vector<float>();
  auto counts = block.forward(x, TokenLayout::from_counts({8, 8})).to_vector<float>();
  EXPECT_EQ(dense, counts);
  auto first = block.forward(ops::narrow(x, 0, 0, 8), TokenLayout::dense(1, Grid{2, 2, 2})).to_vector<float>();
  auto second = block.forward(ops::narrow(x, 0, 8, 8), TokenLayout::dense(1, Grid{2, 2, 2})).to_vector<float>();
  expect_close(rows_of(dense, 0, 8, 8), first, 1e-5, "block clip 0");
  expect_close(rows_of(dense, 8, 8, 8), second, 1e-5, "block clip 1");
}

TEST(Attention, LayerRejectsInputThatDoesNotMatchTheLayout) {
  MultiHeadSelfAttention attn(8, 2);
  EXPECT_THROW(attn.forward(ops::zeros({5, 8}), TokenLayout::from_counts({2, 2})), std::invalid_argument);
  EXPECT_THROW(attn.forward(ops::zeros({4, 6}), TokenLayout::from_counts({2, 2})), std::invalid_argument);
  EXPECT_THROW(MultiHeadSelfAttention(10, 3), std::invalid_argument);
  EXPECT_EQ(attn.head_dim, 4);
}

TEST(Attention, WithoutQkvBiasHasNoQkvBiasParameter) {
  MultiHeadSelfAttention attn(8, 2, false);
  std::vector<std::string> names;
  for (auto& [name, _] : attn.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"qkv.weight", "proj.weight", "proj.bias"}));
  EXPECT_EQ(attn.forward(ops::randn({5, 8}), TokenLayout::from_counts({2, 3})).shape(), (Shape{5, 8}));
}

// ---------------------------------------------------------------- (b) the reference kernel

TEST(ReferenceAttention, EqualsAFloat64LoopPerClip) {
  const int64_t H = 2, d = 4;
  const std::vector<int64_t> counts = {3, 1, 6, 2};
  TokenLayout layout = TokenLayout::from_counts(counts);
  const int64_t N = layout.total_tokens();
  manual_seed(99);
  Tensor q = ops::randn({H, N, d}), k = ops::randn({H, N, d}), v = ops::randn({H, N, d});
  const double scale = 0.37;
  Tensor o = reference_attention(q, k, v, layout, scale);
  ASSERT_EQ(o.shape(), (Shape{H, N, d}));
  auto expected = attention_by_hand(q.to_vector<float>(), k.to_vector<float>(), v.to_vector<float>(), H, d, counts, scale);
  auto got = o.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-5) << i;
}

TEST(CpuBackendAttention, SameBitsOnOneTwoAndThreeThreads) {
  // The CPU backend's attention for short clips (tensor/cpu/attention_materialised.cpp) spreads the clips of
  // different lengths over the threads, and a clip with most of the work (the 200-token one here) runs alone,
  // threaded inside: output and q, k, v gradients must be the same bits whatever the thread count, including
  // on one thread, where nothing is shared out. And the same values as the plain reference.
  const int64_t H = 2, d = 16;
  TokenLayout layout = TokenLayout::from_counts({200, 3, 17, 17, 9, 40, 1, 33});
  const int64_t N = layout.total_tokens();
  manual_seed(321);
  Tensor qv = ops::randn({H, N, d}), kv = ops::randn({H, N, d}), vv = ops::randn({H, N, d}), g = ops::randn({H, N, d});
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor q = ops::clone(qv).set_requires_grad(), k = ops::clone(kv).set_requires_grad(),
           v = ops::clone(vv).set_requires_grad();
    Tensor o = attention_kernel("device")(q, k, v, layout, 0.25);
    sum(o * g).backward();
    omp_set_num_threads(saved);
    return std::vector<std::vector<float>>{o.to_vector<float>(), q.grad().to_vector<float>(),
                                           k.grad().to_vector<float>(), v.grad().to_vector<float>()};
  };
  const auto one = run(1);
  {
    Tensor q = ops::clone(qv).set_requires_grad(), k = ops::clone(kv).set_requires_grad(),
           v = ops::clone(vv).set_requires_grad();
    Tensor o = reference_attention(q, k, v, layout, 0.25);
    sum(o * g).backward();
    const std::vector<std::vector<float>> plain{o.to_vector<float>(), q.grad().to_vector<float>(),
                                                k.grad().to_vector<float>(), v.grad().to_vector<float>()};
    for (size_t i = 0; i < one.size(); ++i)
      for (size_t e = 0; e < one[i].size(); ++e) ASSERT_NEAR(one[i][e], plain[i][e], 1e-5) << "vs reference " << i;
  }
  for (int threads : {2, 3}) {
    const auto many = run(threads);
    const char* names[] = {"output", "d q", "d k", "d v"};
    for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], many[i]) << names[i] << " on " << threads << " threads";
  }
}

TEST(ReferenceAttention, NoLeakageAcrossClips) {
  const int64_t H = 2, d = 3;
  TokenLayout layout = TokenLayout::from_counts({4, 5, 3});
  manual_seed(5);
  Tensor q = ops::randn({H, 12, d}), k = ops::randn({H, 12, d}), v = ops::randn({H, 12, d});
  auto before = reference_attention(q, k, v, layout, 0.5).to_vector<float>();
  // Change clip 1 (tokens 4..8) in q, k and v.
  for (Tensor* t : {&q, &k, &v}) ops::fill_(ops::narrow(*t, 1, 4, 5), -7.0);
  auto after = reference_attention(q, k, v, layout, 0.5).to_vector<float>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < 12; ++i) {
      bool in_clip1 = i >= 4 && i < 9;
      auto a = rows_of(before, h * 12 + i, 1, d), b = rows_of(after, h * 12 + i, 1, d);
      if (in_clip1) EXPECT_NE(a, b) << "token " << i;
      else EXPECT_EQ(a, b) << "clip 0 or 2 changed at head " << h << " token " << i;
    }
}

TEST(ReferenceAttention, EmptyClipsAndShapeErrors) {
  const int64_t H = 1, d = 2;
  TokenLayout layout = TokenLayout::from_counts({2, 0, 3});
  EXPECT_EQ(layout.batch_size(), 3);
  EXPECT_EQ(layout.clip_tokens(1), 0);
  manual_seed(6);
  Tensor q = ops::randn({H, 5, d}), k = ops::randn({H, 5, d}), v = ops::randn({H, 5, d});
  auto got = reference_attention(q, k, v, layout, 1.0).to_vector<float>();
  auto expected = attention_by_hand(q.to_vector<float>(), k.to_vector<float>(), v.to_vector<float>(), H, d, {2, 0, 3}, 1.0);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-5);
  EXPECT_THROW(reference_attention(q, k, ops::randn({H, 4, d}), layout, 1.0), std::invalid_argument);
  EXPECT_THROW(reference_attention(ops::randn({H, 6, d}), ops::randn({H, 6, d}), ops::randn({H, 6, d}), layout, 1.0),
               std::invalid_argument);
}

// ---------------------------------------------------------------- (c), (d) the kernel registry

TEST(AttentionKernels, UnknownNameThrowsListingTheKnownOnes) {
  expect_throw_containing([] { attention_kernel("no_such_kernel"); }, {"no_such_kernel", "reference"});
  expect_throw_containing([] { MultiHeadSelfAttention(8, 2, true, "no_such_kernel"); }, {"no_such_kernel", "reference"});
  MultiHeadSelfAttention attn(8, 2);
  expect_throw_containing([&] { attn.set_kernel("nope"); }, {"nope", "reference"});
  EXPECT_EQ(attn.kernel_name(), "device");  // a failed switch keeps the old kernel (the default)
  auto names = attention_kernel_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "reference"), names.end());
}

// The layer reaches the backend's attention ("device", "tiled" on the CPU): a test backend whose attention
// returns zeros makes the layer's output exactly proj's bias on every token, and sees the layer's scale and clips.
class ZeroAttentionCpu : public CpuBackend {
 public:
  int calls = 0;
  double seen_scale = 0;
  size_t seen_clips = 0;
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor&, const Tensor&, const AttentionClips& clips,
                                           const AttentionOptions& options) override {
    ++calls, seen_scale = options.scale, seen_clips = clips.offsets.size() - 1;
    return {ops::zeros(q.shape()), {}};
  }
};

TEST(AttentionKernels, TheLayerReachesTheBackendsAttention) {
  manual_seed(12);
  Tensor x = ops::randn({9, 12});
  TokenLayout layout = TokenLayout::from_counts({4, 5});
  ZeroAttentionCpu zero;
  glance::testing::ScopedCpuBackend installed(&zero);
  for (const std::string kernel : {"device", "tiled"}) {
    MultiHeadSelfAttention attn(12, 3, true, kernel);
    zero.calls = 0;
    auto out = attn.forward(x, layout).to_vector<float>();
    auto bias = attn.proj->bias.to_vector<float>();
    EXPECT_EQ(zero.calls, 1) << kernel;
    EXPECT_DOUBLE_EQ(zero.seen_scale, 1.0 / 2.0);  // head_dim 4
    EXPECT_EQ(zero.seen_clips, 2u);
    for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(rows_of(out, i, 1, 12), bias) << kernel << ", token " << i;
  }
  MultiHeadSelfAttention plain(12, 3, true, "reference");  // the plain kernel does not go through the backend
  zero.calls = 0;
  plain.forward(x, layout);
  EXPECT_EQ(zero.calls, 0);
}

TEST(AttentionKernels, EachKernelRefusesTheWrongDevice) {
  const TokenLayout layout = TokenLayout::from_counts({4});
  const Tensor q = ops::randn({1, 4, 8});
  for (const std::string kernel : {"fused", "fused_deterministic", "fused_bf16", "fused_fp16"}) {
    expect_throw_containing([&] { attention_kernel(kernel)(q, q, q, layout, 1.0); }, {kernel, "cpu", "tiled"});
  }
}

// ---------------------------------------------------------------- (e) TokenLayout

TEST(TokenLayout, DenseCoordinatesOffsetsAndClipIds) {
  TokenLayout layout = TokenLayout::dense(2, Grid{2, 2, 2});
  EXPECT_EQ(layout.batch_size(), 2);
  EXPECT_EQ(layout.total_tokens(), 16);
  EXPECT_EQ(layout.max_tokens(), 8);
  EXPECT_EQ(layout.clip_begin(1), 8);
  EXPECT_EQ(layout.clip_tokens(0), 8);
  EXPECT_EQ(layout.grid().t, 2);
  EXPECT_EQ(layout.grid().size(), 8);
  std::vector<int32_t> t, h, w;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 2; ++k) t.push_back(i), h.push_back(j), w.push_back(k);
  EXPECT_EQ(layout.t().to_vector<int32_t>(), t);
  EXPECT_EQ(layout.h().to_vector<int32_t>(), h);
  EXPECT_EQ(layout.w().to_vector<int32_t>(), w);
  EXPECT_EQ(layout.t().to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(layout.length().to_vector<int32_t>(), std::vector<int32_t>(16, 1));
  Tensor cu = layout.cu_seqlens();
  EXPECT_EQ(cu.dtype(), DType::Int32);
  EXPECT_EQ(cu.to_vector<int32_t>(), (std::vector<int32_t>{0, 8, 16}));
  // The per-device copy is made once and handed out again (the same storage), with the same values.
  Tensor on_cpu = layout.cu_seqlens_on(Device::cpu());
  EXPECT_EQ(on_cpu.to_vector<int32_t>(), (std::vector<int32_t>{0, 8, 16}));
  EXPECT_EQ(layout.cu_seqlens_on(Device::cpu()).raw_data(), on_cpu.raw_data());
  // With it, in the same (single) copy: each token's row of a grid-sized table, and the run lengths as int64.
  const TokenLayout::DeviceIndices ix = layout.indices_on(Device::cpu());
  std::vector<int64_t> rows;
  for (int b = 0; b < 2; ++b)
    for (int64_t r = 0; r < 8; ++r) rows.push_back(r);  // (t * 2 + h) * 2 + w in row-major order
  EXPECT_EQ(ix.position.dtype(), DType::Int64);
  EXPECT_EQ(ix.position.to_vector<int64_t>(), rows);
  EXPECT_EQ(ix.length.to_vector<int64_t>(), std::vector<int64_t>(16, 1));
  EXPECT_EQ(ix.cu_seqlens.raw_data(), on_cpu.raw_data());
  EXPECT_EQ(ix.position.storage().get(), ix.length.storage().get()) << "one buffer, one upload";
  Tensor clip = layout.clip_of_token();
  EXPECT_EQ(clip.dtype(), DType::Int64);
  std::vector<int64_t> expected_clip(16, 0);
  std::fill(expected_clip.begin() + 8, expected_clip.end(), 1);
  EXPECT_EQ(clip.to_vector<int64_t>(), expected_clip);
  EXPECT_NO_THROW(layout.validate());
}

// indices_on for an RLT-like layout on a grid with three different sides and runs longer than 1: the grid row
// is (t * H' + h) * W' + w (a mix-up of H' and W' changes it), the lengths are the runs'.
TEST(TokenLayout, DeviceIndicesOfARaggedLayoutOnANonCubicGrid) {
  const Grid grid{3, 2, 4};  // T' 3, H' 2, W' 4
  // clip 0: (t 0, h 1, w 3, run 3), (t 2, h 0, w 1, run 1); clip 1: (t 1, h 1, w 0, run 2)
  const TokenLayout layout({2, 1}, ops::from_vector<int32_t>({0, 2, 1}), ops::from_vector<int32_t>({1, 0, 1}),
                           ops::from_vector<int32_t>({3, 1, 0}), ops::from_vector<int32_t>({3, 1, 2}), grid);
  const TokenLayout::DeviceIndices ix = layout.indices_on(Device::cpu());
  EXPECT_EQ(ix.position.to_vector<int64_t>(), (std::vector<int64_t>{(0 * 2 + 1) * 4 + 3, (2 * 2 + 0) * 4 + 1, (1 * 2 + 1) * 4 + 0}));
  EXPECT_EQ(ix.length.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(ix.cu_seqlens.dtype(), DType::Int32);
  EXPECT_EQ(ix.cu_seqlens.to_vector<int32_t>(), (std::vector<int32_t>{0, 2, 3}));
  // A copy of the layout shares what was uploaded; a second call hands out the same storage.
  const TokenLayout copy = layout;
  EXPECT_EQ(copy.indices_on(Device::cpu()).position.raw_data(), ix.position.raw_data());
}

// Grid::index numbers the cells in (t, h, w) row-major order: the loops below visit them in that order, so
// the k-th cell visited must get number k (a swapped H' and W' on this 3 x 2 x 4 grid breaks it).
TEST(TokenLayout, GridNumbersItsCellsInRowMajorOrder) {
  const Grid g{3, 2, 4};
  int64_t k = 0;
  for (int64_t t = 0; t < g.t; ++t)
    for (int64_t h = 0; h < g.h; ++h)
      for (int64_t w = 0; w < g.w; ++w) EXPECT_EQ(g.index(t, h, w), k++) << t << ", " << h << ", " << w;
  EXPECT_EQ(k, g.size());
  EXPECT_EQ(g.index(0, 1, 0), 4);
  EXPECT_EQ(g.index(1, 0, 0), 8);
  EXPECT_EQ(to_string(g), "3 x 2 x 4");
  EXPECT_TRUE(g == (Grid{3, 2, 4}));
  EXPECT_TRUE(g != (Grid{3, 4, 2}));
}

TEST(TokenLayout, FromCountsGivesPositionsWithinEachClip) {
  TokenLayout layout = TokenLayout::from_counts({2, 3});
  EXPECT_EQ(layout.offsets(), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(layout.w().to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 0, 1, 2}));
  EXPECT_EQ(layout.t().to_vector<int32_t>(), std::vector<int32_t>(5, 0));
  EXPECT_EQ(layout.clip_of_token().to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 1, 1}));
  EXPECT_EQ(layout.grid().w, 3);
  EXPECT_EQ(layout.max_tokens(), 3);
  TokenLayout none;
  EXPECT_EQ(none.batch_size(), 0);
  EXPECT_EQ(none.total_tokens(), 0);
}

TEST(TokenLayout, ValidateRejectsBadCoordinatesAndLengthsWithMessages) {
  auto i32 = [](std::vector<int32_t> v) { return ops::from_vector<int32_t>(v); };
  Grid grid{2, 2, 2};
  // Good: two tokens at (0,0,0) and (1,1,1), lengths 1 and 1.
  EXPECT_NO_THROW(TokenLayout({2}, i32({0, 1}), i32({0, 1}), i32({0, 1}), i32({1, 1}), grid));
  // A run may last the whole clip (length = T').
  EXPECT_NO_THROW(TokenLayout({1}, i32({0}), i32({0}), i32({0}), i32({2}), grid));

  expect_throw_containing([&] { TokenLayout({2}, i32({0, 2}), i32({0, 0}), i32({0, 0}), i32({1, 1}), grid); },
                          {"'t'", "2"});
  expect_throw_containing([&] { TokenLayout({2}, i32({0, 0}), i32({0, -1}), i32({0, 0}), i32({1, 1}), grid); },
                          {"'h'", "-1"});
  expect_throw_containing([&] { TokenLayout({2}, i32({0, 0}), i32({0, 0}), i32({5, 0}), i32({1, 1}), grid); },
                          {"'w'", "5"});
  expect_throw_containing([&] { TokenLayout({2}, i32({0, 0}), i32({0, 0}), i32({0, 0}), i32({1, 0}), grid); },
                          {"'length'", "0"});
  expect_throw_containing([&] { TokenLayout({2}, i32({0, 0}), i32({0, 0}), i32({0, 0}), i32({1, 3}), grid); },
                          {"'length'", "3"});
  // Sizes that differ from the token count, and the wrong dtype.
  expect_throw_containing([&] { TokenLayout({3}, i32({0, 0}), i32({0, 0, 0}), i32({0, 0, 0}), i32({1, 1, 1}), grid); },
                          {"'t'", "[3]"});
  expect_throw_containing(
      [&] {
        TokenLayout({2}, i32({0, 0}), i32({0, 0}), i32({0, 0}), ops::from_vector<int64_t>({1, 1}), grid);
      },
      {"'length'", "int32"});
  expect_throw_containing([&] { TokenLayout({2}, i32({0, 0}), Tensor(), i32({0, 0}), i32({1, 1}), grid); }, {"'h'"});
  expect_throw_containing([&] { TokenLayout({2, -1}, i32({0}), i32({0}), i32({0}), i32({1}), grid); },
                          {"negative", "-1"});
}

TEST(TokenLayout, ValidateRejectsARunPastTheLastFrame) {
  // A run starting at frame t lasts `length` tubelets, so t + length may not pass the grid's T'.
  auto i32 = [](std::vector<int32_t> v) { return ops::from_vector<int32_t>(v); };
  Grid grid{2, 2, 2};
  EXPECT_NO_THROW(TokenLayout({1}, i32({1}), i32({0}), i32({0}), i32({1}), grid));
  expect_throw_containing([&] { TokenLayout({1}, i32({1}), i32({0}), i32({0}), i32({2}), grid); }, {"length"});
}

}  // namespace
