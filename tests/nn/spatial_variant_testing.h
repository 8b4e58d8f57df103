// Helpers for the tests of the grid-based designs (test_variant_pooling.cpp, test_variant_deformable.cpp):
//   - randomise_parameters / to_float64: random weights everywhere (no branch hides behind a zero init)
//     and the same layer in float64, for tight comparisons and gradcheck;
//   - RunExpanded: a packed RLT batch rebuilt as dense clips by copying each kept token into every cell of
//     its run, written here with plain loops (independent of nn/attention/run_expansion.h);
//   - one_clip / clip_rows: clip b of a packed batch on its own;
//   - layer_norm_rows_f64: LayerNorm of the rows of a [.., C] host array.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "attention_testing.h"
#include "nn/init.h"
#include "nn/module.h"
#include "nn/token_layout.h"

namespace glance::testing::spatial {

// Every parameter drawn at random: norm weights around 1, everything else around 0 (std `spread`).
inline void randomise_parameters(const nn::Module& m, uint64_t seed, double spread = 0.3) {
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    const bool norm_weight = name.find("norm") != std::string::npos && name.size() >= 7 &&
                             name.compare(name.size() - 7, 7, ".weight") == 0;
    nn::init::normal_(p, norm_weight ? 1.0 : 0.0, norm_weight ? 0.2 : spread, &gen);
  }
}

// Converts every parameter to float64 in place (the handles stay valid, so the layer's members see it).
inline void to_float64(const nn::Module& m) {
  for (auto& [name, p] : m.named_parameters()) {
    const Tensor d = ops::contiguous(ops::to_dtype(p, DType::Float64));
    TensorImpl& impl = p.impl();
    impl.storage = d.storage(), impl.shape = d.shape(), impl.strides = d.strides(), impl.offset = d.offset();
    impl.dtype = DType::Float64;
    impl.grad.reset();
  }
}

inline bool every_parameter_has_a_finite_gradient(const nn::Module& m, std::string* which = nullptr) {
  for (const auto& [name, p] : m.named_parameters()) {
    if (!p.grad().defined()) {
      if (which) *which = name + " (no gradient)";
      return false;
    }
    for (double g : as_doubles(p.grad())) {
      if (!std::isfinite(g)) {
        if (which) *which = name + " (not finite)";
        return false;
      }
    }
  }
  return true;
}

// A packed RLT batch as dense clips: dense row b*T'H'W' + (t*H' + h)*W' + w holds the kept token whose
// run covers (t, h, w); kept_cell[i] is token i's own dense row.
struct RunExpanded {
  std::vector<int64_t> source;     // [B * T'H'W']: the token copied into each dense row
  std::vector<int64_t> kept_cell;  // [N_total]
  nn::TokenLayout dense;

  explicit RunExpanded(const nn::TokenLayout& layout) {
    const nn::Grid g = layout.grid();
    const std::vector<int32_t> t = layout.t().to_vector<int32_t>(), h = layout.h().to_vector<int32_t>(),
                               w = layout.w().to_vector<int32_t>(), len = layout.length().to_vector<int32_t>();
    const std::vector<int64_t> clip = clip_ids(layout);
    source.assign(static_cast<size_t>(layout.batch_size() * g.size()), -1);
    for (size_t i = 0; i < t.size(); ++i) {
      const int64_t row = clip[i] * g.size() + (t[i] * g.h + h[i]) * g.w + w[i];
      kept_cell.push_back(row);
      for (int64_t r = 0; r < len[i]; ++r) source[row + r * g.h * g.w] = static_cast<int64_t>(i);
    }
    dense = nn::TokenLayout::dense(layout.batch_size(), g);
  }
  // x [N_total, C] -> [B * T'H'W', C]
  Tensor expand(const Tensor& x) const { return ops::index_select(x, 0, ops::from_vector(source)); }
  // dense rows [B * T'H'W', C] -> the kept tokens' rows [N_total, C]
  Tensor at_kept(const Tensor& dense_rows) const { return ops::index_select(dense_rows, 0, ops::from_vector(kept_cell)); }
};

inline nn::TokenLayout one_clip(const nn::TokenLayout& layout, int64_t b) {
  const int64_t start = layout.clip_begin(b), n = layout.clip_tokens(b);
  return nn::TokenLayout({n}, ops::narrow(layout.t(), 0, start, n), ops::narrow(layout.h(), 0, start, n),
                         ops::narrow(layout.w(), 0, start, n), ops::narrow(layout.length(), 0, start, n),
                         layout.grid());
}
inline Tensor clip_rows(const Tensor& x, const nn::TokenLayout& layout, int64_t b) {
  return ops::narrow(x, 0, layout.clip_begin(b), layout.clip_tokens(b));
}

// LayerNorm over the last axis of rows [R, C] (host, float64): (x - mean) / sqrt(var + eps) * weight + bias.
inline std::vector<double> layer_norm_rows_f64(const std::vector<double>& x, int64_t C, const std::vector<double>& weight,
                                               const std::vector<double>& bias, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r * C < x.size(); ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mean += x[r * C + c];
    mean /= double(C);
    for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mean) * (x[r * C + c] - mean);
    var /= double(C);
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = (x[r * C + c] - mean) / std::sqrt(var + eps) * weight[c] + bias[c];
  }
  return y;
}

}  // namespace glance::testing::spatial
