// MViT v2 pooling attention (nn/attention/pooling.h), registered as "pooling". Checked against:
//   - ordinary multi-head attention ("joint") when pooling is skipped (kernel = stride = 1, no residual);
//   - masked float64 attention when the convs are identities (centre tap 1), on dense and RLT batches (on
//     RLT, keys with +log(run length): the dense grid holds each run token once per cell of its run);
//   - a float64 loop implementation of the whole layer (conv, norm, attention, residual pooling, proj) and
//     of the max-pool skip, with random weights and strides;
//   - the dense computation on the run-expanded clip, read at the kept tokens (RLT adaptation);
//   - each clip alone (packing), and gradcheck at a tiny size.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "nn/attention/heads.h"
#include "nn/attention/pooling.h"
#include "nn/attention/registry.h"
#include "nn/transformer.h"
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

std::shared_ptr<PoolingAttention> make_pooling(int64_t dim, int64_t heads, std::map<std::string, double> options,
                                               uint64_t seed, bool f64 = true) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.options = std::move(options);
  auto layer = std::dynamic_pointer_cast<PoolingAttention>(make_attention("pooling", c));
  randomise_parameters(*layer, seed);
  if (f64) to_float64(*layer);
  return layer;
}

// ---- the float64 loop implementation ----

// One pooled role (q, k or v) of one head on dense clips: rows [B][cells][d] -> conv, LayerNorm.
struct Pooled {
  std::vector<double> rows;  // [B * cells_out * d]
  int64_t cells = 0;
  Grid grid;
};

Pooled naive_pool(const std::vector<double>& in, int64_t B, const Grid& g, int64_t d, const DepthwiseConv3d* conv,
                  const LayerNorm* norm) {
  if (!conv) return {in, g.size(), g};
  const int64_t k = conv->kernel, s = conv->stride, pad = k / 2;
  const Grid o{(g.t + 2 * pad - k) + 1, (g.h + 2 * pad - k) / s + 1, (g.w + 2 * pad - k) / s + 1};
  const std::vector<double> w = as_doubles(conv->weight);  // [d, 1, k, k, k]
  std::vector<double> out(static_cast<size_t>(B * o.size() * d), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ot = 0; ot < o.t; ++ot)
      for (int64_t oh = 0; oh < o.h; ++oh)
        for (int64_t ow = 0; ow < o.w; ++ow)
          for (int64_t c = 0; c < d; ++c) {
            double acc = 0;
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < k; ++j)
                for (int64_t m = 0; m < k; ++m) {
                  const int64_t t = ot + i - pad, h = oh * s + j - pad, ww = ow * s + m - pad;
                  if (t < 0 || t >= g.t || h < 0 || h >= g.h || ww < 0 || ww >= g.w) continue;
                  acc += w[((c * k + i) * k + j) * k + m] * in[(b * g.size() + (t * g.h + h) * g.w + ww) * d + c];
                }
            out[(b * o.size() + (ot * o.h + oh) * o.w + ow) * d + c] = acc;
          }
  return {layer_norm_rows_f64(out, d, as_doubles(norm->weight), as_doubles(norm->bias), norm->eps), o.size(), o};
}

// The layer on dense clips x [B * T'H'W', D] (float64 loops). *out_grid receives the query grid.
std::vector<double> naive_pooling_attention(const PoolingAttention& a, const std::vector<double>& x, int64_t B,
                                            const Grid& g, Grid* out_grid) {
  const int64_t D = a.dim, H = a.heads, d = a.head_dim, L = g.size();
  const std::vector<double> wqkv = as_doubles(a.qkv->weight), bqkv = as_doubles(a.qkv->bias);
  const std::vector<double> wp = as_doubles(a.proj->weight), bp = as_doubles(a.proj->bias);
  std::vector<double> y(static_cast<size_t>(B * L * 3 * D));
  for (int64_t n = 0; n < B * L; ++n)
    for (int64_t j = 0; j < 3 * D; ++j) {
      double acc = bqkv[j];
      for (int64_t c = 0; c < D; ++c) acc += wqkv[j * D + c] * x[n * D + c];
      y[n * 3 * D + j] = acc;
    }
  std::vector<double> merged;  // [B * Lq, D]
  int64_t Lq = 0;
  for (int64_t hd = 0; hd < H; ++hd) {
    auto role = [&](int64_t r) {  // [B * L * d]: column block r*D + hd*d of y
      std::vector<double> rows(static_cast<size_t>(B * L * d));
      for (int64_t n = 0; n < B * L; ++n)
        for (int64_t c = 0; c < d; ++c) rows[n * d + c] = y[n * 3 * D + r * D + hd * d + c];
      return rows;
    };
    const Pooled q = naive_pool(role(0), B, g, d, a.pool_q.get(), a.norm_q.get());
    const Pooled k = naive_pool(role(1), B, g, d, a.pool_k.get(), a.norm_k.get());
    const Pooled v = naive_pool(role(2), B, g, d, a.pool_v.get(), a.norm_v.get());
    Lq = q.cells;
    if (out_grid) *out_grid = q.grid;
    merged.resize(static_cast<size_t>(B * Lq * D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Lq; ++i) {
        const double* qi = &q.rows[(b * Lq + i) * d];
        std::vector<double> s(k.cells);
        double mx = -std::numeric_limits<double>::infinity(), z = 0;
        for (int64_t j = 0; j < k.cells; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += qi[c] * k.rows[(b * k.cells + j) * d + c];
          s[j] = dot / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < k.cells; ++j) z += std::exp(s[j] - mx);
        for (int64_t c = 0; c < d; ++c) {
          double o = a.residual_pooling ? qi[c] : 0.0;
          for (int64_t j = 0; j < k.cells; ++j) o += std::exp(s[j] - mx) / z * v.rows[(b * v.cells + j) * d + c];
          merged[(b * Lq + i) * D + hd * d + c] = o;
        }
      }
  }
  std::vector<double> out(merged.size());
  for (int64_t n = 0; n < B * Lq; ++n)
    for (int64_t j = 0; j < D; ++j) {
      double acc = bp[j];
      for (int64_t c = 0; c < D; ++c) acc += wp[j * D + c] * merged[n * D + c];
      out[n * D + j] = acc;
    }
  return out;
}

// MViT's max-pool skip with loops: kernel (1, s+1, s+1), stride (1, s, s), padding (0, (s+1)/2, (s+1)/2).
std::vector<double> naive_skip(const std::vector<double>& x, int64_t B, const Grid& g, int64_t D, int64_t s) {
  const int64_t k = s + 1, pad = k / 2;
  const int64_t Ho = (g.h + 2 * pad - k) / s + 1, Wo = (g.w + 2 * pad - k) / s + 1;
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < g.t; ++t)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow)
          for (int64_t c = 0; c < D; ++c) {
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < k; ++j)
              for (int64_t i = 0; i < k; ++i) {
                const int64_t h = oh * s + j - pad, w = ow * s + i - pad;
                if (h >= 0 && h < g.h && w >= 0 && w < g.w) m = std::max(m, x[(b * g.size() + (t * g.h + h) * g.w + w) * D + c]);
              }
            out.push_back(m);
          }
  return out;
}

// ---- tests ----

TEST(VariantPooling, KernelAndStrideOneWithoutResidualPoolingIsJointAttention) {
  // MViT skips a pooling whose kernel and stride are 1: no conv, no norm. Without residual pooling the layer
  // is then ordinary multi-head attention, on a dense and on an RLT batch (no densifying either).
  AttentionConfig c;
  c.dim = 16, c.heads = 4;
  c.options = {{"kernel", 1}, {"q_stride", 1}, {"kv_stride", 1}, {"residual_pooling", 0}};
  auto pooling = make_attention("pooling", c);
  randomise_parameters(*pooling, 3);
  for (const auto& [name, p] : pooling->named_parameters()) {
    EXPECT_TRUE(name.rfind("qkv.", 0) == 0 || name.rfind("proj.", 0) == 0) << name << " should not exist";
  }
  AttentionConfig jc;
  jc.dim = 16, jc.heads = 4;
  auto joint = make_attention("joint", jc);
  joint->load_state_dict(pooling->state_dict());
  Generator gen(4);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{3, 2, 3}), rlt_like_layout(3, Grid{4, 3, 2}, 0.4, 5)}) {
    const Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    expect_all_close(as_doubles(pooling->forward(x, layout)), as_doubles(joint->forward(x, layout)), 1e-6,
                     "pooling skipped vs joint");
  }
}

// With every conv a centre tap of 1 (identity) at stride 1: out = proj(attn(LN q, LN k, LN v) + LN q), where
// on an RLT batch the keys are the dense grid's cells, i.e. each run token once per cell of its run:
// the same as one key per kept token with +log(run length) on its logit.
void check_identity_convs(const TokenLayout& layout) {
  auto layer = make_pooling(12, 3, {{"kernel", 3}, {"q_stride", 1}, {"kv_stride", 1}}, 7);
  for (auto* conv : {layer->pool_q.get(), layer->pool_k.get(), layer->pool_v.get()}) {
    std::vector<double> w(static_cast<size_t>(conv->weight.numel()), 0.0);
    for (int64_t c = 0; c < conv->channels; ++c) w[c * 27 + 13] = 1.0;  // centre of the 3 x 3 x 3 kernel
    ops::copy_(conv->weight, ops::from_vector(w, conv->weight.shape()));
  }
  Generator gen(8);
  const Tensor x = ops::randn({layout.total_tokens(), 12}, DType::Float64, &gen);
  const QKV p = project_qkv(*layer->qkv, x, 3);
  auto norm = [&](const Tensor& rows, const LayerNorm& n) {  // [H, N, d] -> LN over d, by the test's loops
    return ops::from_vector(layer_norm_rows_f64(as_doubles(rows), 4, as_doubles(n.weight), as_doubles(n.bias), n.eps),
                            rows.shape());
  };
  const Tensor q = norm(p.q, *layer->norm_q), k = norm(p.k, *layer->norm_k), v = norm(p.v, *layer->norm_v);
  const std::vector<int64_t> clip = clip_ids(layout);
  std::vector<double> log_run;
  for (int32_t l : layout.length().to_vector<int32_t>()) log_run.push_back(std::log(double(l)));
  std::vector<double> o = masked_attention_f64(q, k, v, 0.5, [&](int64_t i, int64_t j) { return clip[i] == clip[j]; },
                                               log_run);
  const std::vector<double> qd = as_doubles(q);
  for (size_t i = 0; i < o.size(); ++i) o[i] += qd[i];  // residual pooling
  const Tensor expected = layer->proj->forward(merge_heads(ops::from_vector(o, q.shape())));
  expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(expected), 1e-10, "centre-tap convs");
}

TEST(VariantPooling, CentreTapConvsAreIdentitiesOnDenseAndRltBatches) {
  check_identity_convs(TokenLayout::dense(2, Grid{3, 3, 2}));
  check_identity_convs(rlt_like_layout(3, Grid{4, 2, 3}, 0.4, 9));
}

TEST(VariantPooling, EqualsFloat64LoopsWithRandomWeightsAndStrides) {
  struct Case {
    std::map<std::string, double> options;
    Grid grid;
  };
  const std::vector<Case> cases = {
      {{{"q_stride", 2}, {"kv_stride", 2}}, Grid{3, 5, 4}},                    // downsampling stage, odd H'
      {{}, Grid{2, 4, 3}},                                                     // defaults: q stride 1, kv stride 2
      {{{"kernel", 1}, {"q_stride", 2}, {"kv_stride", 1}}, Grid{2, 3, 3}},     // q subsampled, k and v skipped
      {{{"kernel", 5}, {"kv_stride", 3}, {"residual_pooling", 0}}, Grid{2, 4, 5}},
  };
  for (const Case& cs : cases) {
    auto layer = make_pooling(8, 2, cs.options, 11);
    const TokenLayout layout = TokenLayout::dense(2, cs.grid);
    Generator gen(12);
    const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
    Grid out_grid;
    const std::vector<double> expected = naive_pooling_attention(*layer, as_doubles(x), 2, cs.grid, &out_grid);
    const std::string what = "grid " + std::to_string(cs.grid.h) + "x" + std::to_string(cs.grid.w) + ", q_stride " +
                             std::to_string(layer->q_stride);
    expect_all_close(as_doubles(layer->forward(x, layout)), expected, 1e-10, what);
    const TokenLayout out = layer->output_layout(layout);
    EXPECT_EQ(out.total_tokens(), 2 * out_grid.size()) << what;
    EXPECT_EQ(out.grid().h, (cs.grid.h + layer->q_stride - 1) / layer->q_stride) << what;  // ceil(H' / s)
    EXPECT_EQ(out.grid().w, (cs.grid.w + layer->q_stride - 1) / layer->q_stride) << what;
    const std::vector<double> skip = as_doubles(layer->skip(x, layout));
    if (layer->q_stride == 1) {
      expect_all_close(skip, as_doubles(x), 0, what + ": skip is x");
    } else {
      expect_all_close(skip, naive_skip(as_doubles(x), 2, cs.grid, 8, layer->q_stride), 0, what + ": max-pool skip");
    }
  }
}

TEST(VariantPooling, RltOutputIsTheDenseComputationOnTheRunExpandedClipAtTheKeptTokens) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 4, 3}, 0.35, 13);
  const RunExpanded expanded(layout);
  Generator gen(14);
  const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float64, &gen);
  const Tensor dense_x = expanded.expand(x);
  {  // q stride 1: the output keeps the RLT layout, one row per kept token
    auto layer = make_pooling(8, 2, {}, 15);
    const Tensor dense_out = layer->forward(dense_x, expanded.dense);
    expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(expanded.at_kept(dense_out)), 1e-10, "q stride 1");
    EXPECT_EQ(layer->output_layout(layout).total_tokens(), layout.total_tokens());
  }
  {  // q stride 2: the output is the dense pooled grid, as the dense computation's
    auto layer = make_pooling(8, 2, {{"q_stride", 2}}, 16);
    expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(layer->forward(dense_x, expanded.dense)), 1e-10,
                     "q stride 2");
    expect_all_close(as_doubles(layer->skip(x, layout)), as_doubles(layer->skip(dense_x, expanded.dense)), 0,
                     "q stride 2 skip");
    const TokenLayout out = layer->output_layout(layout);
    EXPECT_EQ(out.offsets(), (std::vector<int64_t>{0, 16, 32, 48}));  // 4 x 2 x 2 cells per clip
    EXPECT_EQ(out.length().to_vector<int32_t>(), std::vector<int32_t>(48, 1));
  }
}

TEST(VariantPooling, PackedClipsEqualEachClipAlone) {
  const TokenLayout layout = rlt_like_layout(3, Grid{4, 3, 3}, 0.4, 17);
  Generator gen(18);
  const Tensor x = ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen);
  for (double q_stride : {1.0, 2.0}) {
    auto layer = make_pooling(8, 2, {{"q_stride", q_stride}}, 19, false);
    const Tensor packed = layer->forward(x, layout) + layer->skip(x, layout);
    const TokenLayout out = layer->output_layout(layout);
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const TokenLayout alone = one_clip(layout, b);
      const Tensor own = layer->forward(clip_rows(x, layout, b), alone) + layer->skip(clip_rows(x, layout, b), alone);
      expect_all_close(as_doubles(own), as_doubles(clip_rows(packed, out, b)), 1e-5,
                       "clip " + std::to_string(b) + " q_stride " + std::to_string(q_stride));
    }
  }
}

TEST(VariantPooling, GradcheckAtATinySize) {
  for (double q_stride : {1.0, 2.0}) {
    const TokenLayout layout = rlt_like_layout(2, Grid{2, 3, 2}, 0.5, 21);
    auto layer = make_pooling(4, 2, {{"q_stride", q_stride}}, 22);
    Generator gen(23);
    std::vector<Tensor> inputs{ops::randn({layout.total_tokens(), 4}, DType::Float64, &gen).set_requires_grad(true)};
    for (const auto& [name, p] : layer->named_parameters()) inputs.push_back(p);  // perturbed in place by gradcheck
    const auto result = autograd::gradcheck(
        [&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout) + layer->skip(in[0], layout); },
        inputs);
    EXPECT_TRUE(result.ok) << "q_stride " << q_stride << ": " << result.message;
    std::string which;
    EXPECT_TRUE(every_parameter_has_a_finite_gradient(*layer, &which)) << which;
  }
}

TEST(VariantPooling, ABlockWithAQueryStrideDownsamples) {
  BlockConfig bc;
  bc.dim = 8, bc.heads = 2, bc.attention = "pooling", bc.attention_options = {{"q_stride", 2}};
  TransformerBlock block(bc);
  const TokenLayout layout = rlt_like_layout(2, Grid{2, 4, 4}, 0.5, 25);
  Generator gen(26);
  const Tensor y = block.forward(ops::randn({layout.total_tokens(), 8}, DType::Float32, &gen), layout);
  EXPECT_EQ(y.shape(), (Shape{2 * 2 * 2 * 2, 8}));
  EXPECT_EQ(block.output_layout(layout).grid().h, 2);
}

TEST(VariantPooling, RejectsBadOptionsAndInputs) {
  AttentionConfig c;
  c.dim = 8, c.heads = 2;
  auto with = [&](const std::string& option, double value) {
    return glance::testing::option_error("pooling", c, option, value);
  };
  EXPECT_NE(with("kernel", 2).find("kernel = 2"), std::string::npos) << with("kernel", 2);
  EXPECT_NE(with("q_stride", 3).find("q_stride = 3"), std::string::npos) << with("q_stride", 3);
  EXPECT_NE(with("kv_stride", 0).find("kv_stride = 0"), std::string::npos) << with("kv_stride", 0);
  EXPECT_NE(with("residual_pooling", 2).find("residual_pooling"), std::string::npos);
  EXPECT_NE(with("kernel", 2.5).find("whole number"), std::string::npos) << with("kernel", 2.5);
  EXPECT_NE(with("stride", 2).find("unknown option 'stride'"), std::string::npos) << with("stride", 2);

  auto layer = make_attention("pooling", c);
  const TokenLayout layout = TokenLayout::dense(1, Grid{2, 2, 2});
  const std::string shape = glance::testing::invalid_argument_message([&] { layer->forward(ops::zeros({8, 6}), layout); });
  EXPECT_NE(shape.find("[8, 6]"), std::string::npos) << shape;
  // A layout whose runs leave a cell uncovered (no t = 0 token at (0, 1)) cannot be densified.
  TokenLayout holes({3}, ops::from_vector(std::vector<int32_t>{0, 0, 0}), ops::from_vector(std::vector<int32_t>{0, 0, 1}),
                    ops::from_vector(std::vector<int32_t>{0, 1, 0}), ops::from_vector(std::vector<int32_t>{2, 2, 2}),
                    Grid{2, 2, 2});
  const std::string cover = glance::testing::invalid_argument_message([&] { layer->forward(ops::zeros({3, 8}), holes); });
  EXPECT_NE(cover.find("covered by no token"), std::string::npos) << cover;
}

}  // namespace
