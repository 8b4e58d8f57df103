// Deformable space-time attention (nn/attention/deformable.h), registered as "deformable". Checked:
//   - the sampling core with points at the query's own cell and q.k logits = temporal attention within the
//     sub-clip (masked float64 attention "same clip, same (h, w), same sub-clip");
//   - the core against per-frame bilinear_sample_points reads, for points anywhere (outside the frame too);
//   - block matching finds the shift of a synthetic moving pattern (and 0 on a static one);
//   - the whole layer against float64 loops with random weights (fractional sampling points);
//   - the RLT adaptation (= the dense layer on the run-expanded clip, at the kept tokens), packing, the
//     zero-offset initialisation, gradcheck at a tiny size, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "nn/attention/deformable.h"
#include "nn/attention/registry.h"
#include "nn/functional/grid_sample.h"
#include "spatial_variant_testing.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::clip_ids;
using glance::testing::expect_all_close;
using glance::testing::masked_attention_f64;
using glance::testing::rlt_like_layout;
using namespace glance::testing::spatial;

std::shared_ptr<DeformableAttention> make_deformable(int64_t dim, int64_t heads, std::map<std::string, double> options,
                                                     uint64_t seed, bool f64 = true) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.options = std::move(options);
  auto layer = std::dynamic_pointer_cast<DeformableAttention>(make_attention("deformable", c));
  randomise_parameters(*layer, seed);  // the offsets and weights too: points off the grid, unequal weights
  if (f64) to_float64(*layer);
  return layer;
}

// Bilinear read of channels [col, col + n) of frame `base` (rows base .. base + H'W' of V [.., C]), zero outside.
std::vector<double> bilinear_f64(const std::vector<double>& V, int64_t C, int64_t base, const Grid& g, int64_t col,
                                 int64_t n, double y, double x) {
  std::vector<double> out(n, 0.0);
  const double y0 = std::floor(y), x0 = std::floor(x);
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const double yy = y0 + dy, xx = x0 + dx;
      if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
      const double weight = (dy ? y - y0 : 1 - (y - y0)) * (dx ? x - x0 : 1 - (x - x0));
      const int64_t row = base + static_cast<int64_t>(yy) * g.w + static_cast<int64_t>(xx);
      for (int64_t c = 0; c < n; ++c) out[c] += weight * V[row * C + col + c];
    }
  return out;
}

std::vector<double> linear_f64(const Linear& l, const std::vector<double>& x) {  // one row
  const std::vector<double> w = as_doubles(l.weight), b = as_doubles(l.bias);
  std::vector<double> y(l.out_features);
  for (int64_t j = 0; j < l.out_features; ++j) {
    y[j] = b[j];
    for (int64_t c = 0; c < l.in_features; ++c) y[j] += w[j * l.in_features + c] * x[c];
  }
  return y;
}

// ---- the sampling core ----

TEST(VariantDeformable, OwnCellSamplesWithDotProductLogitsAreTemporalAttentionWithinTheSubclip) {
  // Zero offsets and zero motion put the single point of slot t' on the query's own (h, w) in frame t'; with
  // the logits set to q.k * scale of that cell, the core is softmax attention over the query's location in
  // the frames of its sub-clip. T' = 6 with sub-clips of 4: {0..3} and a short {4, 5} (its slots 2, 3 masked).
  const Grid g{6, 3, 2};
  const int64_t B = 2, H = 2, d = 3, S = 4, N = B * g.size();
  const TokenLayout layout = TokenLayout::dense(B, g);
  Generator gen(1);
  const Tensor q = ops::randn({H, N, d}, DType::Float64, &gen), k = ops::randn({H, N, d}, DType::Float64, &gen);
  const Tensor v = ops::randn({H, N, d}, DType::Float64, &gen);
  const double scale = 1.0 / std::sqrt(double(d));
  const std::vector<double> Q = as_doubles(q), K = as_doubles(k);
  const std::vector<int32_t> t = layout.t().to_vector<int32_t>(), h = layout.h().to_vector<int32_t>(),
                             w = layout.w().to_vector<int32_t>();
  const std::vector<int64_t> clip = clip_ids(layout);
  std::vector<double> positions, logits(static_cast<size_t>(N * S * H), 0.0);
  std::vector<int64_t> frame;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t tp = t[i] / S * S + s;
      frame.push_back(tp < g.t ? clip[i] * g.t + tp : -1);
      for (int64_t hd = 0; hd < H; ++hd) {
        positions.push_back(h[i]), positions.push_back(w[i]);
        if (tp >= g.t) continue;
        const int64_t j = clip[i] * g.size() + (tp * g.h + h[i]) * g.w + w[i];  // the key at (t', h, w)
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += Q[(hd * N + i) * d + c] * K[(hd * N + j) * d + c];
        logits[(i * S + s) * H + hd] = dot * scale;
      }
    }
  const Tensor values = ops::reshape(v, {H, B * g.t, g.h, g.w, d});  // dense rows are (frame, h, w)
  const Tensor got = deformable_sampling_attention(values, ops::from_vector(positions, {N, S, H, 1, 2}),
                                                   ops::from_vector(logits, {N, S, H, 1}), frame);  // [N, H, d]
  const std::vector<double> expected = masked_attention_f64(q, k, v, scale, [&](int64_t i, int64_t j) {
    return clip[i] == clip[j] && h[i] == h[j] && w[i] == w[j] && t[i] / S == t[j] / S;
  });
  expect_all_close(as_doubles(ops::permute(got, {1, 0, 2})), expected, 1e-12, "temporal attention in the sub-clip");
}

TEST(VariantDeformable, CoreEqualsPerFrameBilinearReadsAnywhere) {
  // Points inside, on the border and far outside their frame (the frames are stacked into one tall map
  // inside the core: no point may read a neighbouring frame), unused slots, random logits.
  const int64_t H = 2, F = 3, Hg = 3, Wg = 4, d = 2, Nq = 5, S = 3, P = 2;
  Generator gen(2);
  const Tensor values = ops::randn({H, F, Hg, Wg, d}, DType::Float64, &gen);
  const Tensor positions = ops::uniform({Nq, S, H, P, 2}, -2.5, 4.5, DType::Float64, &gen);
  const Tensor logits = ops::randn({Nq, S, H, P}, DType::Float64, &gen);
  const std::vector<int64_t> frame = {0, 1, 2, 2, -1, 1, 1, 0, -1, 0, 2, 2, 1, -1, -1};
  const Tensor got = deformable_sampling_attention(values, positions, logits, frame);
  const std::vector<double> pos = as_doubles(positions), lg = as_doubles(logits);
  std::vector<double> expected(static_cast<size_t>(Nq * H * d), 0.0);
  for (int64_t i = 0; i < Nq; ++i)
    for (int64_t hd = 0; hd < H; ++hd) {
      double z = 0;
      for (int64_t s = 0; s < S; ++s)
        for (int64_t n = 0; n < P; ++n) z += frame[i * S + s] < 0 ? 0.0 : std::exp(lg[((i * S + s) * H + hd) * P + n]);
      for (int64_t s = 0; s < S; ++s) {
        const int64_t f = frame[i * S + s];
        if (f < 0) continue;
        const Tensor map = ops::contiguous(ops::select(ops::select(values, 0, hd), 0, f));  // [H', W', d]
        for (int64_t n = 0; n < P; ++n) {
          const int64_t p = ((i * S + s) * H + hd) * P + n;
          const Tensor point = ops::from_vector(std::vector<double>{pos[2 * p], pos[2 * p + 1]}, {1, 2});
          const std::vector<double> sample = as_doubles(bilinear_sample_points(map, point));
          for (int64_t c = 0; c < d; ++c) expected[(i * H + hd) * d + c] += std::exp(lg[p]) / z * sample[c];
        }
      }
    }
  expect_all_close(as_doubles(got), expected, 1e-12, "core vs per-frame reads");
}

// ---- the motion cue ----

TEST(VariantDeformable, BlockMatchingFindsTheShiftOfAMovingPattern) {
  // Frame t shows a random pattern moved right by t cells: f(t, h, w) = pattern(h, w - t).
  const Grid g{4, 3, 5};
  const int64_t C = 6;
  Generator gen(3);
  const std::vector<double> pattern = as_doubles(ops::randn({g.h, g.w + g.t, C}, DType::Float64, &gen));
  std::vector<double> f;
  for (int64_t t = 0; t < g.t; ++t)
    for (int64_t h = 0; h < g.h; ++h)
      for (int64_t w = 0; w < g.w; ++w)
        for (int64_t c = 0; c < C; ++c) f.push_back(pattern[(h * (g.w + g.t) + (w - t + g.t)) * C + c]);
  const MotionField m = block_matching(ops::from_vector(f, {g.size(), C}), 1, g, 1);
  for (int64_t t = 0; t < g.t; ++t)
    for (int64_t h = 0; h < g.h; ++h)
      for (int64_t w = 0; w < g.w; ++w) {
        const int64_t cell = (t * g.h + h) * g.w + w;
        if (t + 1 < g.t && w + 1 < g.w) {  // the content moves to w + 1 in the next frame
          EXPECT_EQ(m.to_next[2 * cell], 0) << t << " " << h << " " << w;
          EXPECT_EQ(m.to_next[2 * cell + 1], 1) << t << " " << h << " " << w;
        }
        if (t > 0 && w > 0) {  // and came from w - 1 in the previous one
          EXPECT_EQ(m.to_prev[2 * cell], 0);
          EXPECT_EQ(m.to_prev[2 * cell + 1], -1);
        }
      }
  // Chained over frames: MD(0 -> 3) of (1, 0) is (0, 3); MD(3 -> 1) of (2, 4) is (0, -2); MD(t -> t) = 0.
  EXPECT_EQ(motion_displacement(m, 0, 0, 1, 0, 3), (std::array<int64_t, 2>{0, 3}));
  EXPECT_EQ(motion_displacement(m, 0, 3, 2, 4, 1), (std::array<int64_t, 2>{0, -2}));
  EXPECT_EQ(motion_displacement(m, 0, 2, 1, 1, 2), (std::array<int64_t, 2>{0, 0}));
  // A static clip (every frame the same): every vector is 0, ties going to the smallest shift.
  std::vector<double> still;
  for (int64_t t = 0; t < g.t; ++t) still.insert(still.end(), f.begin(), f.begin() + g.h * g.w * C);
  const MotionField s = block_matching(ops::from_vector(still, {g.size(), C}), 1, g, 2);
  for (int64_t v : s.to_next) EXPECT_EQ(v, 0);
  for (int64_t v : s.to_prev) EXPECT_EQ(v, 0);
}

// ---- the layer ----

// The layer on dense clips with float64 loops; the motion field comes from block_matching (tested above).
std::vector<double> naive_deformable(const DeformableAttention& a, const Tensor& x, int64_t B, const Grid& g) {
  const int64_t D = a.dim, H = a.heads, d = a.head_dim, P = a.points, S = std::min(a.subclip, g.t), L = g.size();
  const std::vector<double> X = as_doubles(x);
  const MotionField motion = block_matching(x, B, g, a.search);
  std::vector<double> V;  // value_proj of every row
  for (int64_t n = 0; n < B * L; ++n) {
    const std::vector<double> v = linear_f64(*a.value_proj, std::vector<double>(X.begin() + n * D, X.begin() + (n + 1) * D));
    V.insert(V.end(), v.begin(), v.end());
  }
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < g.t; ++t)
      for (int64_t h = 0; h < g.h; ++h)
        for (int64_t w = 0; w < g.w; ++w) {
          const int64_t i = b * L + (t * g.h + h) * g.w + w;
          std::vector<double> merged(D, 0.0);
          struct Sample {
            int64_t head;
            double logit;
            std::vector<double> value;
          };
          std::vector<Sample> samples;
          for (int64_t tp = t / S * S; tp < t / S * S + S && tp < g.t; ++tp) {
            const std::array<int64_t, 2> md = motion_displacement(motion, b, t, h, w, tp);
            const std::vector<double> m = linear_f64(*a.motion_embed, {double(md[0]), double(md[1]), double(tp - t)});
            std::vector<double> z(D);
            for (int64_t c = 0; c < D; ++c) z[c] = X[i * D + c] + m[c];
            const std::vector<double> off = linear_f64(*a.sampling_offsets, z), lg = linear_f64(*a.attention_weights, z);
            for (int64_t hd = 0; hd < H; ++hd)
              for (int64_t n = 0; n < P; ++n) {
                const double y = h + md[0] + off[(hd * P + n) * 2], xx = w + md[1] + off[(hd * P + n) * 2 + 1];
                samples.push_back({hd, lg[hd * P + n], bilinear_f64(V, D, b * L + tp * g.h * g.w, g, hd * d, d, y, xx)});
              }
          }
          for (int64_t hd = 0; hd < H; ++hd) {
            double mx = -std::numeric_limits<double>::infinity(), z = 0;
            for (const Sample& s : samples)
              if (s.head == hd) mx = std::max(mx, s.logit);
            for (const Sample& s : samples)
              if (s.head == hd) z += std::exp(s.logit - mx);
            for (const Sample& s : samples)
              if (s.head == hd)
                for (int64_t c = 0; c < d; ++c) merged[hd * d + c] += std::exp(s.logit - mx) / z * s.value[c];
          }
          const std::vector<double> o = linear_f64(*a.output_proj, merged);
          out.insert(out.end(), o.begin(), o.end());
        }
  return out;
}

TEST(VariantDeformable, LayerEqualsFloat64LoopsWithRandomWeights) {
  for (const auto& [options, grid] : std::vector<std::pair<std::map<std::string, double>, Grid>>{
           {{}, Grid{4, 3, 3}},                                             // defaults: 4 points, one sub-clip
           {{{"subclip", 2}, {"points", 3}, {"search", 2}}, Grid{5, 4, 3}},  // short last sub-clip {4}
       }) {
    auto layer = make_deformable(8, 2, options, 4);
    const TokenLayout layout = TokenLayout::dense(2, grid);
    Generator gen(5);
    const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
    expect_all_close(as_doubles(layer->forward(x, layout)), naive_deformable(*layer, x, 2, grid), 1e-10,
                     "points " + std::to_string(layer->points));
  }
}

TEST(VariantDeformable, StartsWithAllPointsAtTheMotionDisplacedCellAndUniformWeights) {
  // Default init: zero sampling_offsets and attention_weights. On a static clip MD = 0, so every sample of
  // query (t, h, w) reads (h, w) in a frame equal to its own: out = output_proj(value_proj(x)).
  auto layer = make_deformable(8, 2, {}, 6);
  layer->reset_special_parameters();
  const Grid g{6, 2, 3};
  Generator gen(7);
  const Tensor frame0 = ops::randn({g.h * g.w, 8}, DType::Float64, &gen);
  std::vector<Tensor> frames(static_cast<size_t>(g.t), frame0);
  const Tensor x = ops::concat(frames, 0);
  const Tensor expected = layer->output_proj->forward(layer->value_proj->forward(x));
  expect_all_close(as_doubles(layer->forward(x, TokenLayout::dense(1, g))), as_doubles(expected), 1e-12, "init");
}

TEST(VariantDeformable, RltOutputIsTheDenseComputationOnTheRunExpandedClipAtTheKeptTokens) {
  const TokenLayout layout = rlt_like_layout(3, Grid{6, 3, 3}, 0.35, 8);
  const RunExpanded expanded(layout);
  auto layer = make_deformable(8, 2, {{"subclip", 4}, {"points", 2}}, 9);
  Generator gen(10);
  const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
  const Tensor dense_out = layer->forward(expanded.expand(x), expanded.dense);
  expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(expanded.at_kept(dense_out)), 1e-10, "RLT");
}

TEST(VariantDeformable, PackedClipsEqualEachClipAlone) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 3}, 0.4, 11);
  auto layer = make_deformable(8, 2, {}, 12, false);
  Generator gen(13);
  const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen);
  const Tensor packed = layer->forward(x, layout);
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    expect_all_close(as_doubles(layer->forward(clip_rows(x, layout, b), one_clip(layout, b))),
                     as_doubles(clip_rows(packed, layout, b)), 1e-5, "clip " + std::to_string(b));
  }
}

TEST(VariantDeformable, GradcheckOfTheCoreAndOfTheLayer) {
  {  // the core: values, positions (fractional, some outside), logits; one unused slot
    Generator gen(14);
    std::vector<Tensor> in{ops::randn({2, 2, 3, 2, 2}, DType::Float64, &gen).set_requires_grad(true),
                           ops::uniform({3, 2, 2, 2, 2}, -1.3, 3.3, DType::Float64, &gen).set_requires_grad(true),
                           ops::randn({3, 2, 2, 2}, DType::Float64, &gen).set_requires_grad(true)};
    const std::vector<int64_t> frame = {0, 1, 1, -1, 0, 0};
    const auto r = autograd::gradcheck(
        [&](const std::vector<Tensor>& x) { return deformable_sampling_attention(x[0], x[1], x[2], frame); }, in);
    EXPECT_TRUE(r.ok) << "core: " << r.message;
  }
  for (const TokenLayout& layout : {TokenLayout::dense(1, Grid{3, 2, 2}), rlt_like_layout(2, Grid{3, 2, 2}, 0.5, 15)}) {
    auto layer = make_deformable(4, 2, {{"subclip", 2}, {"points", 2}}, 16);
    Generator gen(17);
    std::vector<Tensor> inputs{ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
    for (const auto& [name, p] : layer->named_parameters()) inputs.push_back(p);  // perturbed in place by gradcheck
    const auto r =
        autograd::gradcheck([&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout); }, inputs);
    EXPECT_TRUE(r.ok) << "layer: " << r.message;
    std::string which;
    EXPECT_TRUE(every_parameter_has_a_finite_gradient(*layer, &which)) << which;
  }
}

TEST(VariantDeformable, RejectsBadOptionsAndInputs) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  auto with = [&](const std::string& option, double value) {
    return glance::testing::option_error("deformable", c, option, value);
  };
  EXPECT_NE(with("points", 0).find("points = 0"), std::string::npos) << with("points", 0);
  EXPECT_NE(with("subclip", 0).find("subclip = 0"), std::string::npos) << with("subclip", 0);
  EXPECT_NE(with("search", -1).find("search = -1"), std::string::npos) << with("search", -1);
  EXPECT_NE(with("points", 1.5).find("whole number"), std::string::npos) << with("points", 1.5);
  EXPECT_NE(with("offsets", 1).find("unknown option 'offsets'"), std::string::npos) << with("offsets", 1);

  auto layer = make_attention("deformable", c);
  const std::string shape = glance::testing::invalid_argument_message([&] { layer->forward(ops::zeros({8, 6}), TokenLayout::dense(1, Grid{2, 2, 2})); });
  EXPECT_NE(shape.find("[8, 6]"), std::string::npos) << shape;
  const Tensor values = ops::zeros({2, 3, 2, 2, 4});
  const std::string pos = glance::testing::invalid_argument_message([&] {
    deformable_sampling_attention(values, ops::zeros({5, 2, 3, 1, 2}), ops::zeros({5, 2, 3, 1}), std::vector<int64_t>(10, 0));
  });
  EXPECT_NE(pos.find("positions"), std::string::npos) << pos;
  const std::string fr = glance::testing::invalid_argument_message([&] {
    deformable_sampling_attention(values, ops::zeros({5, 2, 2, 1, 2}), ops::zeros({5, 2, 2, 1}), std::vector<int64_t>(10, 3));
  });
  EXPECT_NE(fr.find("frame 3"), std::string::npos) << fr;
  EXPECT_THROW(block_matching(ops::zeros({7, 4}), 1, Grid{2, 2, 2}, 1), std::invalid_argument);
}

}  // namespace
