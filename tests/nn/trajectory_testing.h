// Helpers for the Motionformer tests (test_variant_trajectory.cpp, test_variant_orthoformer.cpp):
// float64 brute-force versions of trajectory attention written with plain loops (no glance ops beyond
// reading tensors), a single clip cut out of a packed layout, and a layer converted to float64.
#pragma once
#include <cmath>
#include <vector>

#include "attention_testing.h"
#include "nn/attention/trajectory.h"

namespace glance::testing {

// Every parameter of `m` replaced, in place, by a float64 copy (a leaf that requires grad).
inline void parameters_to_float64(nn::Module& m) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor copy = ops::clone(ops::to_dtype(p.detach(), DType::Float64));
    p.impl() = copy.impl();
    p.set_requires_grad(true);
  }
}

// Clip b of a packed layout as a layout of its own (same grid, coordinates and run lengths).
inline nn::TokenLayout clip_alone(const nn::TokenLayout& layout, int64_t b) {
  const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
  auto part = [&](const Tensor& t) { return ops::clone(ops::narrow(t, 0, first, L)); };
  return nn::TokenLayout({L}, part(layout.t()), part(layout.h()), part(layout.w()), part(layout.length()),
                         layout.grid());
}

// y = W x + b for one row, W [out, in] row-major.
inline std::vector<double> linear_row_f64(const nn::Linear& lin, const double* x) {
  const std::vector<double> W = as_doubles(lin.weight);
  const std::vector<double> bias = lin.bias.defined() ? as_doubles(lin.bias) : std::vector<double>();
  std::vector<double> y(static_cast<size_t>(lin.out_features), 0.0);
  for (int64_t o = 0; o < lin.out_features; ++o) {
    double s = bias.empty() ? 0.0 : bias[o];
    for (int64_t c = 0; c < lin.in_features; ++c) s += W[o * lin.in_features + c] * x[c];
    y[o] = s;
  }
  return y;
}

// present[i][t']: token i's clip holds a token of frame t' (read straight from the layout).
inline std::vector<std::vector<bool>> frames_present(const nn::TokenLayout& layout) {
  const std::vector<int32_t> t = layout.t().to_vector<int32_t>();
  const std::vector<int64_t> clip = clip_ids(layout);
  const int64_t N = layout.total_tokens(), T = layout.grid().t;
  std::vector<std::vector<bool>> present(static_cast<size_t>(N), std::vector<bool>(static_cast<size_t>(T), false));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      if (clip[i] == clip[j]) present[i][t[j]] = true;
  return present;
}

// Stage 1 by loops: y[h][i][t'][c] = softmax over the keys j of frame t' in i's clip of scale q_i.k_j,
// times v_j; zeros where the clip has no key in frame t'. q, k, v as [H][N][d] flat doubles.
inline std::vector<double> trajectory_stage1_f64(const std::vector<double>& q, const std::vector<double>& k,
                                                 const std::vector<double>& v, int64_t H, int64_t d,
                                                 const nn::TokenLayout& layout, double scale) {
  const int64_t N = layout.total_tokens(), T = layout.grid().t;
  const std::vector<int32_t> t = layout.t().to_vector<int32_t>();
  const std::vector<int64_t> clip = clip_ids(layout);
  std::vector<double> y(static_cast<size_t>(H * N * T * d), 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t f = 0; f < T; ++f) {
        std::vector<int64_t> keys;
        for (int64_t j = 0; j < N; ++j)
          if (clip[j] == clip[i] && t[j] == f) keys.push_back(j);
        if (keys.empty()) continue;
        std::vector<double> s;
        double m = -INFINITY;
        for (int64_t j : keys) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += q[(h * N + i) * d + c] * k[(h * N + j) * d + c];
          s.push_back(dot * scale);
          m = std::max(m, s.back());
        }
        double z = 0;
        for (double x : s) z += std::exp(x - m);
        for (size_t a = 0; a < keys.size(); ++a)
          for (int64_t c = 0; c < d; ++c)
            y[((h * N + i) * T + f) * d + c] += std::exp(s[a] - m) / z * v[(h * N + keys[a]) * d + c];
      }
  return y;
}

// Stage 2 and proj by loops, from y [H][N][T'][d] flat: returns [N][D].
inline std::vector<double> trajectory_stage2_f64(const std::vector<double>& y, const nn::TrajectoryAttention& layer,
                                                 const nn::TokenLayout& layout) {
  const int64_t H = layer.heads, d = layer.head_dim, D = layer.dim, N = layout.total_tokens(), T = layout.grid().t;
  const std::vector<int32_t> t = layout.t().to_vector<int32_t>();
  const auto present = frames_present(layout);
  std::vector<double> out;
  for (int64_t i = 0; i < N; ++i) {
    // merged[f][h*d + c] = y[h][i][f][c]
    std::vector<double> merged(static_cast<size_t>(T * D));
    for (int64_t f = 0; f < T; ++f)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t c = 0; c < d; ++c) merged[f * D + h * d + c] = y[((h * N + i) * T + f) * d + c];
    std::vector<double> q2 = linear_row_f64(*layer.proj_q, &merged[t[i] * D]);
    for (double& a : q2) a *= layer.scale;
    std::vector<std::vector<double>> kv(static_cast<size_t>(T));
    for (int64_t f = 0; f < T; ++f) kv[f] = linear_row_f64(*layer.proj_kv, &merged[f * D]);
    std::vector<double> o(static_cast<size_t>(D), 0.0);
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> logit(static_cast<size_t>(T), -INFINITY);
      double m = -INFINITY;
      for (int64_t f = 0; f < T; ++f) {
        if (!present[i][f]) continue;
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += q2[h * d + c] * kv[f][h * d + c];
        logit[f] = dot, m = std::max(m, dot);
      }
      double z = 0;
      for (int64_t f = 0; f < T; ++f) z += present[i][f] ? std::exp(logit[f] - m) : 0.0;
      for (int64_t f = 0; f < T; ++f) {
        if (!present[i][f]) continue;
        const double a = std::exp(logit[f] - m) / z;
        for (int64_t c = 0; c < d; ++c)
          o[h * d + c] += a * (layer.original_code ? merged[f * D + h * d + c] : kv[f][D + h * d + c]);
      }
    }
    const std::vector<double> row = linear_row_f64(*layer.proj, o.data());
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

// q, k, v of the layer's qkv projection by loops, each [H][N][d] flat (timm's [N, 3, H, d] split).
struct QkvF64 {
  std::vector<double> q, k, v;
};
inline QkvF64 project_qkv_f64(const nn::TrajectoryAttention& layer, const Tensor& x) {
  const int64_t H = layer.heads, d = layer.head_dim, D = layer.dim, N = x.size(0);
  const std::vector<double> X = as_doubles(x);
  QkvF64 r;
  for (auto* part : {&r.q, &r.k, &r.v}) part->assign(static_cast<size_t>(H * N * d), 0.0);
  for (int64_t i = 0; i < N; ++i) {
    const std::vector<double> row = linear_row_f64(*layer.qkv, &X[i * D]);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t c = 0; c < d; ++c) {
        r.q[(h * N + i) * d + c] = row[0 * D + h * d + c];
        r.k[(h * N + i) * d + c] = row[1 * D + h * d + c];
        r.v[(h * N + i) * d + c] = row[2 * D + h * d + c];
      }
  }
  return r;
}

// An RLT-like layout in which at least one clip lacks at least one frame (searched over seeds).
inline nn::TokenLayout rlt_layout_with_empty_frame(int64_t clips, nn::Grid grid, double keep) {
  for (uint32_t seed = 1; seed < 1000; ++seed) {
    nn::TokenLayout layout = rlt_like_layout(clips, grid, keep, seed);
    for (const auto& row : frames_present(layout))
      for (bool p : row)
        if (!p) return layout;
  }
  ADD_FAILURE() << "no RLT-like layout with an empty frame";
  return rlt_like_layout(clips, grid, keep, 1);
}

}  // namespace glance::testing
