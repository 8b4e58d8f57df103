// Helpers shared by the attention-design tests (tests/nn/test_variant_*.cpp, test_grouped_attention.cpp):
//   - rlt_like_layout: a packed batch shaped like an RLT batch (t = 0 always kept, later tubelets kept at
//     random, run lengths to the next kept tubelet at the same place), and its dense counterpart;
//   - masked_attention_f64: softmax attention in float64 where token i may attend to token j iff
//     allowed(i, j), optionally with a per-key logit bias; the independent reference for grouped designs.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/attention/registry.h"
#include "nn/token_layout.h"
#include "nn/transformer.h"
#include "tensor/ops.h"

namespace glance::testing {

// A packed batch of `clips` clips on `grid`, each tubelet after t = 0 kept with probability `keep`.
inline nn::TokenLayout rlt_like_layout(int64_t clips, nn::Grid grid, double keep, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution kept(keep);
  std::vector<int64_t> counts;
  std::vector<int32_t> t, h, w, length;
  for (int64_t c = 0; c < clips; ++c) {
    // keep[ti][s] for each location s; t = 0 always kept
    std::vector<std::vector<bool>> k(grid.t, std::vector<bool>(grid.h * grid.w, true));
    for (int64_t ti = 1; ti < grid.t; ++ti)
      for (int64_t s = 0; s < grid.h * grid.w; ++s) k[ti][s] = kept(rng);
    int64_t n = 0;
    for (int64_t ti = 0; ti < grid.t; ++ti)
      for (int64_t s = 0; s < grid.h * grid.w; ++s) {
        if (!k[ti][s]) continue;
        int64_t run = 1;
        while (ti + run < grid.t && !k[ti + run][s]) ++run;
        t.push_back(int32_t(ti)), h.push_back(int32_t(s / grid.w)), w.push_back(int32_t(s % grid.w));
        length.push_back(int32_t(run));
        ++n;
      }
    counts.push_back(n);
  }
  return nn::TokenLayout(counts, ops::from_vector(t), ops::from_vector(h), ops::from_vector(w), ops::from_vector(length),
                         grid);
}

// softmax(scale q k^T + bias[j]) v over the allowed keys, in float64. q, k, v: [H, N, d] row-major
// (any float dtype read as double). Returns [H, N, d]; a query with no allowed key gets zeros.
inline std::vector<double> masked_attention_f64(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                                const std::function<bool(int64_t, int64_t)>& allowed,
                                                const std::vector<double>& key_bias = {}) {
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2);
  const std::vector<double> Q = ops::to_dtype(ops::contiguous(q), DType::Float64).to_vector<double>();
  const std::vector<double> K = ops::to_dtype(ops::contiguous(k), DType::Float64).to_vector<double>();
  const std::vector<double> V = ops::to_dtype(ops::contiguous(v), DType::Float64).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(H * N * d), 0.0);
  for (int64_t hh = 0; hh < H; ++hh)
    for (int64_t i = 0; i < N; ++i) {
      std::vector<double> s(N, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < N; ++j) {
        if (!allowed(i, j)) continue;
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += Q[(hh * N + i) * d + c] * K[(hh * N + j) * d + c];
        s[j] = dot * scale + (key_bias.empty() ? 0.0 : key_bias[j]);
        m = std::max(m, s[j]);
      }
      if (m == -INFINITY) continue;
      double z = 0;
      for (int64_t j = 0; j < N; ++j) z += s[j] == -INFINITY ? 0.0 : std::exp(s[j] - m);
      for (int64_t j = 0; j < N; ++j) {
        if (s[j] == -INFINITY) continue;
        const double p = std::exp(s[j] - m) / z;
        for (int64_t c = 0; c < d; ++c) out[(hh * N + i) * d + c] += p * V[(hh * N + j) * d + c];
      }
    }
  return out;
}

// Largest |a - b| / max(1, |b|), with the place it occurs in the message of a failing EXPECT.
inline void expect_all_close(const std::vector<double>& got, const std::vector<double>& expected, double tol,
                             const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - expected[i]) / std::max(1.0, std::abs(expected[i]));
    if (!(err <= worst)) worst = err, where = i;  // NaN counts as the worst
  }
  EXPECT_LE(worst, tol) << what << ": worst at element " << where << ": " << got[where] << " vs " << expected[where];
}

inline std::vector<double> as_doubles(const Tensor& t) {
  return ops::to_dtype(ops::contiguous(t), DType::Float64).to_vector<double>();
}

// The clip of each token, from the layout's offsets.
inline std::vector<int64_t> clip_ids(const nn::TokenLayout& layout) {
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < layout.batch_size(); ++b) ids.insert(ids.end(), layout.clip_tokens(b), b);
  return ids;
}

// The message of the std::invalid_argument that f throws, or "no exception".
inline std::string invalid_argument_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

// The message of the std::invalid_argument that making `design` with option `name` = `value` throws
// (on top of `base`'s options), or "no exception".
inline std::string option_error(const std::string& design, const nn::AttentionConfig& base, const std::string& name,
                                double value) {
  nn::AttentionConfig c = base;
  c.options = {{name, value}};
  return invalid_argument_message([&] { nn::make_attention(design, c); });
}

// A TransformerBlock with `design` and its default options on the tiny model's clip grid: every parameter
// gets a finite, non-zero gradient, on a dense and on an RLT-like batch.
inline void expect_block_trains_with_defaults(const std::string& design) {
  nn::BlockConfig c;
  c.dim = 32, c.heads = 4, c.grid = nn::Grid{8, 4, 4}, c.attention = design;
  manual_seed(2);
  nn::TransformerBlock block(c);
  Generator gen(3);
  for (const nn::TokenLayout& layout : {nn::TokenLayout::dense(2, c.grid), rlt_like_layout(3, c.grid, 0.4, 4)}) {
    block.zero_grad();
    Tensor x = ops::randn({layout.total_tokens(), 32}, DType::Float32, &gen);
    Tensor y = block.forward(x, layout);
    ASSERT_EQ(y.shape(), x.shape()) << design;
    sum(y * ops::randn(y.shape(), DType::Float32, &gen)).backward();
    for (auto& [pname, p] : block.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << design << ": " << pname;
      double norm = 0;
      for (double g : as_doubles(p.grad())) norm += g * g;
      EXPECT_TRUE(std::isfinite(norm) && norm > 0) << design << ": " << pname;
    }
  }
}

}  // namespace glance::testing
