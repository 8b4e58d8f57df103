// The "nystrom" design (nn/attention/nystrom.h). What is checked, and against what:
//   - the landmark segments follow the T2T rule (hand-written sizes);
//   - the iterative pseudo-inverse converges to the inverse found by Gauss-Jordan elimination in this
//     file, and inverts each matrix of a batch on its own (the per-(clip, head) Z0 scale);
//   - with Q and K constant inside each landmark segment and an (almost) exact inverse, Nyström IS
//     softmax attention: compared with masked float64 attention, dense and RLT-like;
//   - landmarks >= every clip's length takes the official m == n path: exactly the "joint" design;
//   - the conv skip equals a per-clip zero-padded 1-D cross-correlation written out here;
//   - packed == each clip alone (dense, RLT-like); float64 gradcheck of the whole layer with the conv;
//   - bad options and shapes are named in the error.
#include <gtest/gtest.h>

#include <cmath>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/nystrom.h"
#include "nn/attention/registry.h"
#include "nn/transformer.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::clip_ids;
using glance::testing::expect_all_close;
using glance::testing::masked_attention_f64;
using glance::testing::rlt_like_layout;

// Converts every parameter of `m` to float64 in place (every handle follows), for gradchecks.
void parameters_to_float64(Module& m) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor c = ops::contiguous(ops::to_dtype(p, DType::Float64));
    TensorImpl& impl = p.impl();
    impl.storage = c.storage(), impl.strides = c.strides(), impl.offset = c.offset(), impl.dtype = DType::Float64;
    impl.grad.reset();
  }
}

// Clip b of a packed layout as a layout of its own.
TokenLayout clip_alone(const TokenLayout& layout, int64_t b) {
  const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
  return TokenLayout({n}, ops::narrow(layout.t(), 0, begin, n), ops::narrow(layout.h(), 0, begin, n),
                     ops::narrow(layout.w(), 0, begin, n), ops::narrow(layout.length(), 0, begin, n), layout.grid());
}

std::shared_ptr<AttentionLayer> nystrom(int64_t dim, int64_t heads, std::map<std::string, double> options,
                                        uint64_t seed = 3) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.options = std::move(options);
  manual_seed(seed);
  return make_attention("nystrom", c);
}

// The inverse of an m x m matrix by Gauss-Jordan elimination with partial pivoting.
std::vector<double> gauss_jordan_inverse(std::vector<double> a, int64_t m) {
  std::vector<double> inv(static_cast<size_t>(m * m), 0.0);
  for (int64_t i = 0; i < m; ++i) inv[i * m + i] = 1.0;
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t r = col + 1; r < m; ++r)
      if (std::abs(a[r * m + col]) > std::abs(a[pivot * m + col])) pivot = r;
    for (int64_t c = 0; c < m; ++c) {
      std::swap(a[col * m + c], a[pivot * m + c]);
      std::swap(inv[col * m + c], inv[pivot * m + c]);
    }
    const double p = a[col * m + col];
    for (int64_t c = 0; c < m; ++c) a[col * m + c] /= p, inv[col * m + c] /= p;
    for (int64_t r = 0; r < m; ++r) {
      if (r == col) continue;
      const double f = a[r * m + col];
      for (int64_t c = 0; c < m; ++c) a[r * m + c] -= f * a[col * m + c], inv[r * m + c] -= f * inv[col * m + c];
    }
  }
  return inv;
}

TEST(VariantNystrom, LandmarkSegmentsFollowTheT2TRule) {
  EXPECT_EQ(landmark_segment_sizes(10, 4), (std::vector<int64_t>{2, 2, 3, 3}));  // (2+1)*4-10 = 2 short ones
  EXPECT_EQ(landmark_segment_sizes(7, 3), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(landmark_segment_sizes(8, 4), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(landmark_segment_sizes(11, 5), (std::vector<int64_t>{2, 2, 2, 2, 3}));
  EXPECT_EQ(landmark_segment_sizes(3, 3), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_THROW(landmark_segment_sizes(3, 4), std::invalid_argument);
}

TEST(VariantNystrom, IterativeInverseApproachesTheExactInverse) {
  // A batch [2, 3] of 5 x 5 softmax matrices, diagonally dominant so that they are well conditioned.
  const int64_t m = 5;
  Generator gen(21);
  Tensor logits = ops::randn({2, 3, m, m}, DType::Float64, &gen) * 0.7 + ops::eye(m, DType::Float64) * 2.5;
  Tensor a = ops::softmax(logits, -1);
  const std::vector<double> av = as_doubles(a);
  std::vector<double> exact;
  for (int64_t b = 0; b < 6; ++b) {
    auto inv = gauss_jordan_inverse(std::vector<double>(av.begin() + b * m * m, av.begin() + (b + 1) * m * m), m);
    exact.insert(exact.end(), inv.begin(), inv.end());
  }
  auto error_after = [&](int64_t iterations) {
    const std::vector<double> z = as_doubles(iterative_pseudo_inverse(a, iterations));
    double worst = 0;
    for (size_t i = 0; i < z.size(); ++i) worst = std::max(worst, std::abs(z[i] - exact[i]));
    return worst;
  };
  const double e1 = error_after(1), e2 = error_after(2), e30 = error_after(30);
  EXPECT_GT(e1, 1e-3) << "one iteration should not already be exact (else the test proves nothing)";
  EXPECT_LT(e2, e1);
  EXPECT_LT(e30, 1e-6);

  // Each matrix is inverted on its own: Z0's scale is per matrix, so a matrix's result does not depend
  // on the batch around it (the official "original" scale, a max over the whole batch, would).
  Tensor z_batch = iterative_pseudo_inverse(a, 2);
  Tensor z_alone = iterative_pseudo_inverse(ops::contiguous(ops::select(ops::select(a, 0, 1), 0, 2)), 2);
  expect_all_close(as_doubles(ops::select(ops::select(z_batch, 0, 1), 0, 2)), as_doubles(z_alone), 1e-14,
                   "matrix (1, 2) inside the batch vs alone");
  EXPECT_THROW(iterative_pseudo_inverse(ops::zeros({3, 4}), 2), std::invalid_argument);
}

// q, k constant inside each landmark segment of each clip (well separated, diagonally dominant landmark
// scores), v random: Nystrom with a converged inverse and no conv must equal softmax attention.
void check_constant_segments(const TokenLayout& layout, int64_t landmarks, const std::string& what) {
  const int64_t H = 2, d = 8, N = layout.total_tokens();
  Generator gen(13);
  std::vector<double> q(H * N * d), k(H * N * d);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t n = layout.clip_tokens(b);
      if (n == 0) continue;
      const std::vector<int64_t> sizes = landmark_segment_sizes(n, std::min(landmarks, n));
      int64_t row = layout.clip_begin(b);
      for (size_t s = 0; s < sizes.size(); ++s) {
        // Segment s's query and key: 2.5 e_(s mod d) plus noise; the same for all its tokens.
        std::vector<double> qs = as_doubles(ops::randn({d}, DType::Float64, &gen) * 0.3);
        std::vector<double> ks = as_doubles(ops::randn({d}, DType::Float64, &gen) * 0.3);
        qs[s % d] += 2.5, ks[s % d] += 2.5;
        for (int64_t u = 0; u < sizes[s]; ++u, ++row)
          for (int64_t c = 0; c < d; ++c) q[(h * N + row) * d + c] = qs[c], k[(h * N + row) * d + c] = ks[c];
      }
    }
  const Tensor tq = ops::from_vector(q, {H, N, d}), tk = ops::from_vector(k, {H, N, d});
  const Tensor tv = ops::randn({H, N, d}, DType::Float64, &gen);
  NystromOptions options;
  options.landmarks = landmarks, options.iterations = 40;
  const Tensor got = nystrom_attention(tq, tk, tv, layout, options, attention_kernel("reference"));
  const std::vector<int64_t> clip = clip_ids(layout);
  const auto expected = masked_attention_f64(tq, tk, tv, 1.0 / std::sqrt(double(d)),
                                             [&](int64_t i, int64_t j) { return clip[i] == clip[j]; });
  expect_all_close(as_doubles(got), expected, 1e-9, what);
  // After one iteration the same input is only approximately attention: the inverse is what makes it exact.
  options.iterations = 1;
  const auto rough = as_doubles(nystrom_attention(tq, tk, tv, layout, options, attention_kernel("reference")));
  double worst = 0;
  for (size_t i = 0; i < rough.size(); ++i) worst = std::max(worst, std::abs(rough[i] - expected[i]));
  EXPECT_GT(worst, 1e-4) << what << ": one iteration should leave a visible error";
}

TEST(VariantNystrom, ConstantSegmentsGiveExactSoftmaxAttention) {
  // 4 landmarks: clips of 10 (segments 2,2,3,3), 7 (1,2,2,2), 3 (m = n: the exact path), 12 (3,3,3,3).
  check_constant_segments(TokenLayout::from_counts({10, 7, 3, 12}), 4, "from_counts");
  check_constant_segments(TokenLayout::dense(2, Grid{3, 2, 3}), 5, "dense 18 tokens, 5 landmarks");
  check_constant_segments(rlt_like_layout(3, Grid{4, 3, 3}, 0.4, 17), 6, "RLT-like");
}

TEST(VariantNystrom, LandmarksCoveringTheClipGiveJointAttention) {
  // m = n for every clip: the official special case, exact softmax attention == the joint design.
  auto layer = nystrom(16, 2, {{"landmarks", 100}, {"conv_kernel", 0}});
  AttentionConfig c;
  c.dim = 16, c.heads = 2;
  auto joint = make_attention("joint", c);
  joint->load_state_dict(layer->state_dict());  // same qkv and proj
  Generator gen(4);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{2, 3, 3}), rlt_like_layout(3, Grid{4, 3, 3}, 0.5, 2)}) {
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(joint->forward(x, layout)), 1e-5, "m = n");
  }
}

TEST(VariantNystrom, ConvSkipIsAPerClipZeroPaddedCrossCorrelation) {
  const TokenLayout layout = rlt_like_layout(3, Grid{3, 2, 3}, 0.5, 8);
  const int64_t H = 2, d = 3, N = layout.total_tokens();
  Generator gen(6);
  for (int64_t taps : {1, 5, 9}) {
    Tensor v = ops::randn({H, N, d}, DType::Float64, &gen), w = ops::randn({H, 1, taps, 1}, DType::Float64, &gen);
    const std::vector<double> V = as_doubles(v), W = as_doubles(w);
    const std::vector<double> got = as_doubles(depthwise_sequence_conv(v, w, layout));
    const std::vector<int64_t> clip = clip_ids(layout);
    std::vector<double> expected(H * N * d, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t j = i + t - taps / 2;  // PyTorch Conv2d with padding k // 2: a cross-correlation
          if (j < 0 || j >= N || clip[j] != clip[i]) continue;
          for (int64_t c = 0; c < d; ++c) expected[(h * N + i) * d + c] += W[h * taps + t] * V[(h * N + j) * d + c];
        }
    expect_all_close(got, expected, 1e-12, "conv skip with " + std::to_string(taps) + " taps");
  }
}

TEST(VariantNystrom, PackedEqualsEachClipAlone) {
  auto layer = nystrom(16, 2, {{"landmarks", 5}, {"conv_kernel", 7}});
  Generator gen(12);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{2, 3, 4}), rlt_like_layout(4, Grid{4, 3, 3}, 0.3, 5)}) {
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const std::vector<double> packed = as_doubles(layer->forward(x, layout));
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
      const std::vector<double> alone = as_doubles(layer->forward(ops::narrow(x, 0, begin, n), clip_alone(layout, b)));
      expect_all_close(std::vector<double>(packed.begin() + begin * 16, packed.begin() + (begin + n) * 16), alone,
                       1e-5, "clip " + std::to_string(b) + " of " + std::to_string(n) + " tokens");
    }
  }
}

TEST(VariantNystrom, GradcheckOfTheLayerWithTheConvSkip) {
  // Two clips: 7 tokens (3 landmarks, the Nystrom path) and 2 tokens (m = n, the exact path).
  auto layer = nystrom(6, 2, {{"landmarks", 3}, {"iterations", 3}, {"conv_kernel", 3}});
  parameters_to_float64(*layer);
  const TokenLayout layout = TokenLayout::from_counts({7, 2});
  Generator gen(31);
  std::vector<Tensor> inputs{ops::randn({9, 6}, DType::Float64, &gen).set_requires_grad(true)};
  for (auto& [name, p] : layer->named_parameters()) inputs.push_back(p);
  auto result = autograd::gradcheck([&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout); },
                                    inputs);
  EXPECT_TRUE(result.ok) << result.message;
  for (auto& [name, p] : layer->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    double norm = 0;
    for (double g : as_doubles(p.grad())) norm += g * g;
    EXPECT_TRUE(std::isfinite(norm) && norm > 0) << name << " gets no gradient";
  }
}

TEST(VariantNystrom, BadOptionsAndShapesAreNamed) {
  auto message = [](std::map<std::string, double> options) -> std::string {
    try {
      nystrom(8, 2, std::move(options));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_NE(message({{"conv_kernel", 4}}).find("conv_kernel"), std::string::npos);
  EXPECT_NE(message({{"conv_kernel", -3}}).find("conv_kernel"), std::string::npos);
  EXPECT_NE(message({{"landmarks", 0}}).find("landmarks"), std::string::npos);
  EXPECT_NE(message({{"landmarks", 2.5}}).find("landmarks"), std::string::npos);
  EXPECT_NE(message({{"iterations", -1}}).find("iterations"), std::string::npos);
  EXPECT_NE(message({{"landmark", 4}}).find("unknown option 'landmark'"), std::string::npos);
  EXPECT_EQ(message({{"conv_kernel", 0}}), "no exception");
  auto layer = nystrom(8, 2, {});
  try {
    layer->forward(ops::zeros({5, 8}), TokenLayout::from_counts({2, 2}));
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 8]"), std::string::npos) << e.what();
  }
}

TEST(VariantNystrom, TrainsInsideATransformerBlockWithItsDefaults) {
  // The tiny model's clip grid with the design's default options (tests/nn/attention_testing.h).
  glance::testing::expect_block_trains_with_defaults("nystrom");
}

}  // namespace
