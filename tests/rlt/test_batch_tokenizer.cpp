// The batch tokenizer (tensor ops, any device) against the clip-by-clip reference (loops): the same scores,
// masks, run lengths, tubelets and layout, token for token, for every policy and compare mode, on clips
// built to contain static patches, flicker, slow drift (where adjacent and anchor disagree) and noise.
// tests/cuda/test_rlt_cuda.cpp runs the same comparison with the frames on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "rlt/batch_tokenizer.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::rlt;

// B clips [T, 3, H, W] as one batch [B, T, 3, H, W]. Each (clip, patch) gets one behaviour by hash:
// still texture, a flicker every frame, a slow drift of 0.03 per frame (below tau = 0.1 between neighbours,
// above it over a few frames), or fresh noise every frame.
Tensor make_batch(int64_t B, int64_t T, int64_t H, int64_t W, int64_t p, uint64_t seed) {
  Generator gen(seed);
  const std::vector<float> noise = ops::randn({B, T, 3, H, W}, DType::Float32, &gen).to_vector<float>();
  std::vector<float> v(noise.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < T; ++f)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const size_t i = static_cast<size_t>((((b * T + f) * 3 + c) * H + y) * W + x);
            const int64_t kind = (b * 7 + (y / p) * 3 + (x / p) * 5) % 4;
            const float texture = 0.1f * float((y * 5 + x * 3 + c) % 7);
            if (kind == 0) v[i] = texture;                            // still
            if (kind == 1) v[i] = texture + float(f % 2);             // flicker
            if (kind == 2) v[i] = texture + 0.03f * float(f);         // slow drift
            if (kind == 3) v[i] = noise[i];                           // noise
          }
  return ops::from_vector(v, {B, T, 3, H, W});
}

TokenizerConfig config(int64_t tubelet, int64_t patch, DropPolicy policy, CompareMode compare) {
  TokenizerConfig c;
  c.tubelet = tubelet, c.patch = patch, c.tau = 0.1, c.policy = policy, c.compare = compare;
  return c;
}

std::vector<Generator> generators(int64_t B, uint64_t seed) {
  std::vector<Generator> g;
  for (int64_t b = 0; b < B; ++b) g.emplace_back(seed * 100 + uint64_t(b));
  return g;
}

// The reference: tokenize each clip with rlt/tokenizer.cpp and pack them.
PackedClips clip_by_clip(const Tensor& frames, const TokenizerConfig& c, std::vector<Generator> gens) {
  std::vector<TokenizedClip> clips;
  for (int64_t b = 0; b < frames.size(0); ++b) clips.push_back(tokenize(ops::select(frames, 0, b), c, &gens[b]));
  return pack_clips(clips);
}

void expect_same_packing(const PackedClips& got, const PackedClips& want, const std::string& what) {
  ASSERT_EQ(got.layout.offsets(), want.layout.offsets()) << what;
  EXPECT_EQ(got.grid_tokens, want.grid_tokens) << what;
  EXPECT_EQ(got.layout.t().to_vector<int32_t>(), want.layout.t().to_vector<int32_t>()) << what;
  EXPECT_EQ(got.layout.h().to_vector<int32_t>(), want.layout.h().to_vector<int32_t>()) << what;
  EXPECT_EQ(got.layout.w().to_vector<int32_t>(), want.layout.w().to_vector<int32_t>()) << what;
  EXPECT_EQ(got.layout.length().to_vector<int32_t>(), want.layout.length().to_vector<int32_t>()) << what;
  ASSERT_EQ(got.tubelets.shape(), want.tubelets.shape()) << what;
  EXPECT_EQ(got.tubelets.to_vector<float>(), want.tubelets.to_vector<float>()) << what << ": tubelet pixels";
}

TEST(BatchTokenizer, MatchesTheClipByClipTokenizerForEveryPolicyAndMode) {
  struct Sizes { int64_t tubelet, patch, T, H, W; };
  for (const Sizes s : {Sizes{2, 4, 8, 8, 12}, Sizes{1, 2, 5, 4, 6}, Sizes{4, 4, 8, 4, 8}}) {
    const int64_t B = 3;
    const Tensor frames = make_batch(B, s.T, s.H, s.W, s.patch, 11);
    for (const DropPolicy policy : {DropPolicy::Dense, DropPolicy::RLT, DropPolicy::Random}) {
      for (const CompareMode mode : {CompareMode::Adjacent, CompareMode::Anchor}) {
        const TokenizerConfig c = config(s.tubelet, s.patch, policy, mode);
        const std::string what = std::string(policy_name(policy)) + "/" + compare_name(mode) + " tubelet " +
                                 std::to_string(s.tubelet) + " patch " + std::to_string(s.patch);
        std::vector<Generator> gens = generators(B, 5);
        expect_same_packing(tokenize_batch(frames, c, &gens), clip_by_clip(frames, c, generators(B, 5)), what);
      }
    }
  }
}

TEST(BatchTokenizer, ScoresEqualTheReferenceBitForBit) {
  const Tensor frames = make_batch(2, 8, 8, 12, 4, 3);
  for (const CompareMode mode : {CompareMode::Adjacent, CompareMode::Anchor}) {
    const TokenizerConfig c = config(2, 4, DropPolicy::RLT, mode);
    const std::vector<float> got = static_scores_batch(frames, c).to_vector<float>();  // [2, 4, 2, 3]
    for (int64_t b = 0; b < 2; ++b) {
      const std::vector<float> want = static_scores(ops::select(frames, 0, b), c);
      for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[b * want.size() + i], want[i]) << compare_name(mode) << " " << i;
    }
  }
}

TEST(BatchTokenizer, TheDriftingPatchesMakeAdjacentAndAnchorDiffer) {
  // Guards the comparison above against being vacuous: the batch must exercise the anchor sweep.
  const Tensor frames = make_batch(3, 8, 8, 12, 4, 11);
  const int64_t adjacent = tokenize_batch(frames, config(2, 4, DropPolicy::RLT, CompareMode::Adjacent)).layout.total_tokens();
  const int64_t anchor = tokenize_batch(frames, config(2, 4, DropPolicy::RLT, CompareMode::Anchor)).layout.total_tokens();
  EXPECT_LT(adjacent, anchor) << "a slow drift hides from adjacent comparisons only";
  EXPECT_LT(anchor, 3 * 24) << "and some patches are still dropped";
}

TEST(BatchTokenizer, RunLengthsOfAHandMadeMask) {
  // One clip, T' = 5, a 1 x 2 grid. Location 0 kept at t = 0, 2, 3; location 1 only at t = 0.
  const std::vector<uint8_t> keep = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0};
  const Tensor mask = ops::binary(BinaryOp::Gt, ops::from_vector(std::vector<float>(keep.begin(), keep.end()), {1, 5, 1, 2}), 0.5);
  EXPECT_EQ(run_lengths_batch(mask).to_vector<int32_t>(), (std::vector<int32_t>{2, 5, 0, 0, 1, 0, 2, 0, 0, 0}));
  EXPECT_EQ(run_lengths(keep, nn::Grid{5, 1, 2}), (std::vector<int32_t>{2, 5, 0, 0, 1, 0, 2, 0, 0, 0}));
}

TEST(BatchTokenizer, AcceptsANonContiguousBatch) {
  // Frames stored as [T, B, 3, H, W] and viewed as [B, T, 3, H, W].
  const Tensor frames = make_batch(2, 8, 8, 12, 4, 7);
  const Tensor strided = ops::transpose(ops::contiguous(ops::transpose(frames, 0, 1)), 0, 1);
  ASSERT_FALSE(strided.is_contiguous());
  const TokenizerConfig c = config(2, 4, DropPolicy::RLT, CompareMode::Adjacent);
  expect_same_packing(tokenize_batch(strided, c), tokenize_batch(frames, c), "strided");
}

TEST(BatchTokenizer, BadInputIsNamed) {
  const TokenizerConfig c = config(2, 4, DropPolicy::RLT, CompareMode::Adjacent);
  auto message = [&](const Tensor& frames, TokenizerConfig cfg) {
    try {
      tokenize_batch(frames, cfg);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(ops::zeros({8, 3, 8, 12}), c).find("expected frames [B, T, 3, H, W], got [8, 3, 8, 12]"), std::string::npos);
  EXPECT_NE(message(ops::zeros({1, 8, 4, 8, 12}), c).find("[1, 8, 4, 8, 12]"), std::string::npos);
  EXPECT_NE(message(ops::zeros({1, 8, 3, 8, 12}, DType::Float64), c).find("float32"), std::string::npos);
  EXPECT_NE(message(ops::zeros({1, 7, 3, 8, 12}), c).find("7 frames"), std::string::npos);
  TokenizerConfig random = c;
  random.policy = DropPolicy::Random;
  EXPECT_NE(message(ops::zeros({2, 8, 3, 8, 12}), random).find("one generator per clip (2)"), std::string::npos);
}

}  // namespace
