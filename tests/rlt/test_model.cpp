// The RLT transformer's pieces against independent references, and its two key equivalences:
//   RLT with tau < 0 (nothing dropped) gives exactly the dense model's output;
//   a packed batch gives each clip the logits it gets alone.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "rlt/model.h"
#include "rlt/tokenizer.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::rlt;

ModelConfig small_config() {
  ModelConfig c;
  c.frames = 8, c.image_size = 16, c.tubelet = 2, c.patch = 8, c.classes = 5;  // grid 4 x 2 x 2
  c.dim = 24, c.depth = 2, c.heads = 3;
  return c;
}

// A clip whose left half is still and whose right half moves, plus a per-clip offset.
Tensor make_clip(const ModelConfig& c, float offset, uint64_t seed) {
  Generator gen(seed);
  Tensor clip = ops::contiguous(normal({c.frames, 3, c.image_size, c.image_size}, 0.0, 1.0, DType::Float32, &gen));
  float* d = clip.data<float>();
  const int64_t S = c.image_size;
  for (int64_t f = 1; f < c.frames; ++f)
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S / 2; ++x) d[((f * 3 + ch) * S + y) * S + x] = d[(ch * S + y) * S + x] + offset;
  return clip;
}

std::vector<float> values(const Tensor& t) {
  const Tensor c = ops::contiguous(t);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

TEST(RLTModel, SinusoidTableMatchesTheFormula) {
  const Tensor t = sinusoid_table(5, 6);
  const float* d = t.data<float>();
  for (int64_t pos = 0; pos < 5; ++pos) {
    for (int64_t j = 0; j < 6; ++j) {
      const double angle = double(pos) / std::pow(10000.0, double(2 * (j / 2)) / 6.0);
      EXPECT_NEAR(d[pos * 6 + j], j % 2 == 0 ? std::sin(angle) : std::cos(angle), 1e-6);
    }
  }
  EXPECT_FLOAT_EQ(d[0], 0.0f);
  EXPECT_FLOAT_EQ(d[1], 1.0f);
}

TEST(RLTModel, FactorisedTableGivesEachCoordinateItsOwnColumns) {
  // D = 14: D_t = D_h = 4, D_w = 6. Row (t, h, w) = [sin/cos of t | of h | of w], each with its own width.
  const nn::Grid g{3, 2, 4};
  const Tensor t3 = sinusoid_table_3d(g, 14);
  ASSERT_EQ(t3.shape(), (Shape{24, 14}));
  auto pe = [](int64_t pos, int64_t j, int64_t width) {
    const double angle = double(pos) / std::pow(10000.0, double(2 * (j / 2)) / double(width));
    return j % 2 == 0 ? std::sin(angle) : std::cos(angle);
  };
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t w = 0; w < 4; ++w) {
        const float* row = t3.data<float>() + ((t * 2 + h) * 4 + w) * 14;
        for (int64_t j = 0; j < 4; ++j) EXPECT_NEAR(row[j], pe(t, j, 4), 1e-6);
        for (int64_t j = 0; j < 4; ++j) EXPECT_NEAR(row[4 + j], pe(h, j, 4), 1e-6);
        for (int64_t j = 0; j < 6; ++j) EXPECT_NEAR(row[8 + j], pe(w, j, 6), 1e-6);
      }
}

TEST(RLTModel, TubeletEmbeddingIsTheConv3dOfEachTubelet) {
  // Reference: the Conv3d sum written out in float64 over (c, dt, y, x) of the clip itself.
  const ModelConfig c = small_config();
  const Tensor clip = make_clip(c, 0.0f, 1);
  TokenizerConfig tc;
  tc.tubelet = c.tubelet, tc.patch = c.patch, tc.policy = DropPolicy::Dense;
  const TokenizedClip tok = tokenize(clip, tc);
  manual_seed(3);
  TubeletEmbedding embed(3, c.tubelet, c.patch, c.dim);
  const std::vector<float> got = values(embed.forward(tok.tubelets));
  const float *w = embed.weight.data<float>(), *b = embed.bias.data<float>(), *x = clip.data<float>();
  const int64_t S = c.image_size, u = c.tubelet, p = c.patch;
  for (int64_t i = 0; i < tok.tokens(); ++i) {
    for (int64_t d = 0; d < c.dim; ++d) {
      double sum = b[d];
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t dt = 0; dt < u; ++dt)
          for (int64_t y = 0; y < p; ++y)
            for (int64_t xx = 0; xx < p; ++xx) {
              const int64_t frame = tok.t[i] * u + dt, row = tok.h[i] * p + y, col = tok.w[i] * p + xx;
              sum += double(w[(((d * 3 + ch) * u + dt) * p + y) * p + xx]) * x[((frame * 3 + ch) * S + row) * S + col];
            }
      EXPECT_NEAR(got[i * c.dim + d], sum, 1e-4) << "token " << i << " dim " << d;
    }
  }
}

TEST(RLTModel, LengthEncodingAddsTheRowOfEachRunLength) {
  manual_seed(0);
  LengthEncoding enc(4, 3);
  nn::TokenLayout layout({3}, ops::from_vector(std::vector<int32_t>{0, 0, 1}), ops::zeros({3}, DType::Int32),
                         ops::from_vector(std::vector<int32_t>{0, 1, 1}), ops::from_vector(std::vector<int32_t>{4, 1, 3}),
                         nn::Grid{4, 1, 2});
  const std::vector<float> got = values(enc.forward(layout));
  const float* w = enc.weight.data<float>();
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(got[0 * 3 + j], w[3 * 3 + j]);
    EXPECT_EQ(got[1 * 3 + j], w[0 * 3 + j]);
    EXPECT_EQ(got[2 * 3 + j], w[2 * 3 + j]);
  }
}

TEST(RLTModel, MeanPerClipAndItsGradient) {
  const nn::TokenLayout layout = nn::TokenLayout::from_counts({2, 1, 3});
  const Tensor x = ops::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {6, 2});
  const std::vector<double> expected = {2, 3, 5, 6, 9, 10};
  const Tensor m = mean_per_clip(x, layout);
  for (int64_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(m.data<double>()[i], expected[i]);
  Tensor leaf = ops::clone(x);
  leaf.set_requires_grad(true);
  const auto r = autograd::gradcheck([&](const std::vector<Tensor>& in) { return mean_per_clip(in[0], layout); }, {leaf});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(RLTModel, NothingDroppedEqualsDense) {
  const ModelConfig c = small_config();
  manual_seed(5);
  RLTransformer model(c);
  model.eval();
  TokenizerConfig dense, all;
  dense.tubelet = all.tubelet = c.tubelet;
  dense.patch = all.patch = c.patch;
  dense.policy = DropPolicy::Dense;
  all.policy = DropPolicy::RLT;
  all.tau = -1.0;  // every score (>= 0) is > tau: nothing dropped
  std::vector<TokenizedClip> a, b;
  for (int k = 0; k < 3; ++k) {
    const Tensor clip = make_clip(c, 0.0f, 10 + k);  // half the clip is static: RLT at tau 0.1 would drop it
    a.push_back(tokenize(clip, dense));
    b.push_back(tokenize(clip, all));
  }
  const PackedClips pa = pack_clips(a), pb = pack_clips(b);
  ASSERT_EQ(pb.layout.total_tokens(), pa.layout.total_tokens());
  EXPECT_EQ(values(model.forward(pa.tubelets, pa.layout)), values(model.forward(pb.tubelets, pb.layout)))
      << "bit-identical logits";
  // And a tau that drops something changes the token count.
  TokenizerConfig rlt = all;
  rlt.tau = 0.1;
  EXPECT_LT(tokenize(make_clip(c, 0.0f, 10), rlt).tokens(), a[0].tokens());
}

TEST(RLTModel, PackedForwardEqualsEachClipAlone) {
  const ModelConfig c = small_config();
  manual_seed(6);
  RLTransformer model(c);
  model.eval();
  TokenizerConfig t;
  t.tubelet = c.tubelet, t.patch = c.patch, t.tau = 0.1;
  // Offsets 0 / 0.05 / 1: the still half is dropped, dropped (0.05 < tau), kept: three token counts.
  std::vector<TokenizedClip> clips;
  for (int k = 0; k < 3; ++k) clips.push_back(tokenize(make_clip(c, k == 2 ? 1.0f : 0.05f * k, 20 + k), t));
  const PackedClips packed = pack_clips(clips);
  EXPECT_NE(packed.layout.clip_tokens(0), packed.layout.clip_tokens(2));
  const std::vector<float> together = values(model.forward(packed.tubelets, packed.layout));
  for (int k = 0; k < 3; ++k) {
    const PackedClips alone = pack_clips({clips[k]});
    const std::vector<float> single = values(model.forward(alone.tubelets, alone.layout));
    for (int64_t j = 0; j < c.classes; ++j) EXPECT_NEAR(together[k * c.classes + j], single[j], 1e-5) << "clip " << k;
  }
}

TEST(RLTModel, EncodingsAreSwitchable) {
  ModelConfig c = small_config();
  c.pos_encoding = false;
  c.length_encoding = false;
  manual_seed(1);
  RLTransformer plain(c);
  EXPECT_EQ(plain.length_embed, nullptr);
  for (const auto& [name, p] : plain.named_parameters()) EXPECT_EQ(name.find("length_embed"), std::string::npos);
  // Without positions, shuffling a clip's tokens (coordinates with them) leaves the logits unchanged...
  TokenizerConfig t;
  t.tubelet = c.tubelet, t.patch = c.patch, t.policy = DropPolicy::Dense;
  const TokenizedClip tok = tokenize(make_clip(c, 0.0f, 2), t);
  TokenizedClip reversed = tok;
  const int64_t n = tok.tokens();
  reversed.tubelets = ops::index_select(tok.tubelets, 0, ops::arange(double(n - 1), -1.0, -1.0));
  const PackedClips p1 = pack_clips({tok}), p2 = pack_clips({reversed});
  const std::vector<float> l1 = values(plain.forward(p1.tubelets, p1.layout)), l2 = values(plain.forward(p2.tubelets, p2.layout));
  for (size_t j = 0; j < l1.size(); ++j) EXPECT_NEAR(l1[j], l2[j], 1e-5);
  // ...and with positions it does not.
  c.pos_encoding = true;
  manual_seed(1);
  RLTransformer positioned(c);
  const std::vector<float> m1 = values(positioned.forward(p1.tubelets, p1.layout)),
                           m2 = values(positioned.forward(p2.tubelets, p2.layout));
  double diff = 0;
  for (size_t j = 0; j < m1.size(); ++j) diff += std::abs(m1[j] - m2[j]);
  EXPECT_GT(diff, 1e-4);
}

TEST(RLTModel, ConfigRoundTripsAndRejectsBadValues) {
  const ModelConfig c = small_config();
  const ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  ModelConfig bad = c;
  bad.heads = 5;
  EXPECT_THROW(RLTransformer{bad}, std::invalid_argument);
  try {
    model_preset("huge");
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model preset 'huge'"), std::string::npos);
  }
}

// A batch tokenized for another frame size is refused before any work, naming both grids.
TEST(RLTModel, ABatchOfAnotherGridIsRefusedNamingBothGrids) {
  const ModelConfig c = small_config();  // grid 4 x 2 x 2
  RLTransformer model(c);
  TokenizerConfig t;
  t.tubelet = c.tubelet, t.patch = c.patch;
  const PackedClips wide = pack_clips({tokenize(ops::zeros({c.frames, 3, c.image_size, 2 * c.image_size}), t)});
  try {
    model.forward(wide.tubelets, wide.layout);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the batch's token grid 4 x 2 x 4 does not match the model's 4 x 2 x 2"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
