// The run-length tokenizer on hand-made clips whose masks and run lengths are known in advance:
// all static, one moving block, a slow drift below tau (adjacent vs anchor), all moving, the strict
// threshold, the (t, h, w) alignment of run lengths that the paper's code gets wrong, tubelet contents,
// random dropping at RLT's budget, packing, and bad input.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "rlt/tokenizer.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;

// A clip [T, 3, H, W] with every pixel 0, then `paint(frame, patch_row, patch_col) -> value` per patch.
Tensor make_clip(int64_t T, int64_t H, int64_t W, int64_t p, const std::function<float(int64_t, int64_t, int64_t)>& paint) {
  std::vector<float> v(static_cast<size_t>(T * 3 * H * W));
  for (int64_t f = 0; f < T; ++f)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) v[((f * 3 + c) * H + y) * W + x] = paint(f, y / p, x / p);
  return ops::from_vector(v, {T, 3, H, W});
}

TokenizerConfig config(int64_t tubelet, int64_t patch, double tau, CompareMode mode = CompareMode::Adjacent) {
  TokenizerConfig c;
  c.tubelet = tubelet, c.patch = patch, c.tau = tau, c.compare = mode;
  return c;
}

TEST(Tokenizer, AllStaticKeepsOnlyTheFirstTimeStep) {
  // 8 frames of 8 x 12 pixels, patch 4, tubelet 2: grid 4 x 2 x 3. A still image with texture.
  const Tensor clip = make_clip(8, 8, 12, 4, [](int64_t, int64_t h, int64_t w) { return float(h * 3 + w) * 0.7f; });
  const TokenizedClip tok = tokenize(clip, config(2, 4, 0.1));
  ASSERT_EQ(tok.tokens(), 6);  // the 2 x 3 locations of t = 0
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(tok.t[i], 0);
    EXPECT_EQ(tok.length[i], 4) << "each run lasts the whole clip";
  }
  EXPECT_EQ(tok.grid_tokens(), 24);
}

TEST(Tokenizer, OneMovingBlockKeepsItsLocationOnly) {
  // Location (h=1, w=2) flickers between 0 and 1 every frame; everything else is still.
  const Tensor clip = make_clip(8, 8, 12, 4, [](int64_t f, int64_t h, int64_t w) {
    return (h == 1 && w == 2) ? float(f % 2) : 0.5f;
  });
  const TokenizerConfig c = config(2, 4, 0.1);
  // Tubelet t compares frame 2t+1 (value 1) with frame 2t-2 (value 0): score 1 everywhere at (1, 2).
  const std::vector<float> scores = static_scores(clip, c);
  EXPECT_FLOAT_EQ(scores[(1 * 2 + 1) * 3 + 2], 1.0f);
  EXPECT_FLOAT_EQ(scores[(1 * 2 + 0) * 3 + 0], 0.0f);
  const TokenizedClip tok = tokenize(clip, c);
  EXPECT_EQ(tok.tokens(), 6 + 3);
  for (int64_t i = 0; i < tok.tokens(); ++i) {
    const bool moving = tok.h[i] == 1 && tok.w[i] == 2;
    EXPECT_EQ(tok.length[i], moving ? 1 : 4) << "token " << i;
    if (!moving) {
      EXPECT_EQ(tok.t[i], 0);
    }
  }
}

TEST(Tokenizer, SlowDriftHidesFromAdjacentButNotFromAnchor) {
  // Every frame brightens by 0.03: tubelet t vs t-1 compares frames 3 apart, a score of 0.09 < 0.1
  // at every step, although the clip drifts by 0.21 over 8 frames.
  const Tensor clip = make_clip(8, 4, 4, 4, [](int64_t f, int64_t, int64_t) { return 0.03f * float(f); });
  const TokenizedClip adjacent = tokenize(clip, config(2, 4, 0.1, CompareMode::Adjacent));
  EXPECT_EQ(adjacent.tokens(), 1) << "adjacent comparison drops every later tubelet";
  EXPECT_EQ(adjacent.length[0], 4);
  // Anchor: tubelet t's last frame (2t+1) vs the run's first frame: t=1: frame 3 vs 0 (0.09, dropped);
  // t=2: frame 5 vs 0 (0.15, kept: a new run from frame 4); t=3: frame 7 vs 4 (0.09, dropped).
  const TokenizedClip anchor = tokenize(clip, config(2, 4, 0.1, CompareMode::Anchor));
  ASSERT_EQ(anchor.tokens(), 2);
  EXPECT_EQ(anchor.t[1], 2);
  EXPECT_EQ(anchor.length[0], 2);
  EXPECT_EQ(anchor.length[1], 2);
}

TEST(Tokenizer, AllMovingKeepsEverythingWithLengthOne) {
  const Tensor clip = make_clip(6, 8, 8, 4, [](int64_t f, int64_t h, int64_t w) { return float(f + h + w); });
  const TokenizedClip tok = tokenize(clip, config(2, 4, 0.1));
  ASSERT_EQ(tok.tokens(), tok.grid_tokens());
  int64_t i = 0;
  for (int32_t t = 0; t < 3; ++t)
    for (int32_t h = 0; h < 2; ++h)
      for (int32_t w = 0; w < 2; ++w, ++i) {
        EXPECT_EQ(tok.t[i], t);
        EXPECT_EQ(tok.h[i], h);
        EXPECT_EQ(tok.w[i], w);
        EXPECT_EQ(tok.length[i], 1);
      }
}

TEST(Tokenizer, ThresholdIsStrict) {
  // A step of exactly 0.25 (a binary fraction, so the mean is exact): score == tau is static.
  const Tensor clip = make_clip(4, 4, 4, 4, [](int64_t f, int64_t, int64_t) { return f >= 2 ? 0.25f : 0.0f; });
  EXPECT_EQ(tokenize(clip, config(2, 4, 0.25)).tokens(), 1);
  EXPECT_EQ(tokenize(clip, config(2, 4, 0.2499)).tokens(), 2);
}

TEST(Tokenizer, RunLengthsStayAlignedWithTokensInTHWOrder) {
  // Grid T' = 4, H' = 1, W' = 2. Location w=0 changes at t = 2 and 3 (kept at t = 0, 2, 3: lengths 2, 1, 1);
  // w=1 changes at t = 1 and 3 (kept at t = 0, 1, 3: lengths 1, 2, 1). Both frames of a tubelet are equal.
  const float value[2][4] = {{0, 0, 1, 2}, {0, 1, 1, 2}};
  const Tensor clip = make_clip(8, 4, 8, 4, [&](int64_t f, int64_t, int64_t w) { return value[w][f / 2]; });
  const TokenizedClip tok = tokenize(clip, config(2, 4, 0.1));
  // (t, w) in raster order: (0,0) (0,1) (1,1) (2,0) (3,0) (3,1)
  const std::vector<int32_t> t = {0, 0, 1, 2, 3, 3}, w = {0, 1, 1, 0, 0, 1}, length = {2, 1, 2, 1, 1, 1};
  EXPECT_EQ(tok.t, t);
  EXPECT_EQ(tok.w, w);
  EXPECT_EQ(tok.length, length);
  // The paper's code lists lengths location by location, (h, w, t): {2, 1, 1, 1, 2, 1}, which would give
  // token (0,1) the length 1 by luck but token (1,1) the length 1 instead of 2.
  EXPECT_NE(tok.length, (std::vector<int32_t>{2, 1, 1, 1, 2, 1}));
}

TEST(Tokenizer, RunLengthsFromAMask) {
  // One location, T' = 5, kept at t = 0, 3: lengths 3 and 2; dropped tubelets get 0.
  const std::vector<int32_t> got = run_lengths({1, 0, 0, 1, 0}, nn::Grid{5, 1, 1});
  EXPECT_EQ(got, (std::vector<int32_t>{3, 0, 0, 2, 0}));
  EXPECT_THROW(run_lengths({1, 0}, nn::Grid{5, 1, 1}), std::invalid_argument);
}

TEST(Tokenizer, TubeletIsFlattenedAsChannelTimeRowColumn) {
  // Pixel value encodes (frame, channel, y, x); check one tubelet's flattened order by hand.
  std::vector<float> v(4 * 3 * 4 * 4);
  for (int64_t f = 0; f < 4; ++f)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 4; ++x) v[((f * 3 + c) * 4 + y) * 4 + x] = float(1000 * f + 100 * c + 10 * y + x);
  const Tensor clip = ops::from_vector(v, {4, 3, 4, 4});
  TokenizerConfig c = config(2, 2, 0.1);
  c.policy = DropPolicy::Dense;
  const TokenizedClip tok = tokenize(clip, c);  // grid 2 x 2 x 2, K = 3*2*2*2 = 24
  ASSERT_EQ(tok.tubelets.size(1), 24);
  // token (t=1, h=0, w=1) is index 5; element (c=2, dt=1, y=1, x=0) is ((2*2+1)*2+1)*2+0 = 22
  // -> frame 3, channel 2, row 1, column 2.
  EXPECT_EQ(tok.tubelets.data<float>()[5 * 24 + 22], 3000.0f + 200.0f + 10.0f + 2.0f);
}

TEST(Tokenizer, RandomDropKeepsRLTsBudgetReproducibly) {
  const Tensor clip = make_clip(8, 8, 12, 4, [](int64_t f, int64_t h, int64_t w) {
    return (h == 0 && w < 2) ? float(f % 2) : 0.0f;
  });
  TokenizerConfig c = config(2, 4, 0.1);
  const int64_t rlt_tokens = tokenize(clip, c).tokens();
  c.policy = DropPolicy::Random;
  Generator g1(7), g2(7), g3(8);
  const TokenizedClip a = tokenize(clip, c, &g1), b = tokenize(clip, c, &g2), d = tokenize(clip, c, &g3);
  EXPECT_EQ(a.tokens(), rlt_tokens);
  EXPECT_EQ(a.t, b.t);
  EXPECT_EQ(a.w, b.w);
  EXPECT_TRUE(a.t != d.t || a.h != d.h || a.w != d.w) << "another seed, other places";
  for (int32_t l : a.length) EXPECT_GE(l, 1);
}

TEST(Tokenizer, PackConcatenatesClipsWithTheirLayout) {
  const Tensor still = make_clip(4, 4, 8, 4, [](int64_t, int64_t, int64_t w) { return float(w); });
  const Tensor moving = make_clip(4, 4, 8, 4, [](int64_t f, int64_t, int64_t) { return float(f); });
  const TokenizerConfig c = config(2, 4, 0.1);
  const PackedClips p = pack_clips({tokenize(still, c), tokenize(moving, c), tokenize(still, c)});
  EXPECT_EQ(p.layout.offsets(), (std::vector<int64_t>{0, 2, 6, 8}));
  EXPECT_EQ(p.grid_tokens, 12);
  EXPECT_EQ(p.tubelets.size(0), 8);
  EXPECT_EQ(p.layout.length().data<int32_t>()[0], 2);
  EXPECT_EQ(p.layout.length().data<int32_t>()[2], 1);
  EXPECT_EQ(p.layout.t().data<int32_t>()[4], 1);
}

void expect_error(const std::function<void()>& f, const std::string& piece) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << piece << "'";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(piece), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, BadInputIsNamed) {
  const TokenizerConfig c = config(2, 4, 0.1);
  expect_error([&] { tokenize(ops::zeros({8, 1, 8, 8}), c); }, "[T, 3, H, W], got [8, 1, 8, 8]");
  expect_error([&] { tokenize(ops::zeros({7, 3, 8, 8}), c); }, "7 frames of 8 x 8 pixels does not divide");
  expect_error([&] { tokenize(ops::zeros({8, 3, 8, 10}), c); }, "8 x 10 pixels");
  expect_error([&] { tokenize(ops::zeros({8, 3, 8, 8}, DType::Float64), c); }, "float32");
  expect_error([&] { parse_drop_policy("sometimes"); }, "unknown drop policy 'sometimes'");
  expect_error([&] { parse_compare_mode("first"); }, "unknown compare mode 'first'");
  // Clips of different sizes cannot share one packed sequence: the message gives both grids.
  const TokenizedClip small = tokenize(ops::zeros({8, 3, 8, 8}), c), wide = tokenize(ops::zeros({8, 3, 8, 16}), c);
  expect_error([&] { pack_clips({small, wide}); }, "clip 1 has grid 4 x 2 x 4 and 96 values per tubelet; clip 0 has 4 x 2 x 2 and 96");
}

}  // namespace
