// Helpers for the tests of the factorised space-time designs (test_variant_divided.cpp,
// test_variant_factorised_self_attention.cpp, test_variant_factorised_dot_product.cpp):
//   - randomise_parameters / to_float64: random weights everywhere (no branch hides behind a zero init)
//     and the same layer in float64, for tight comparisons and gradcheck;
//   - Coords: "same clip and same (h, w)" / "same clip and same t" masks of a packed batch;
//   - masked_mha_f64: proj(masked attention of qkv(y)) with a layer's own projections and a per-head mask,
//     the independent reference the designs are compared with;
//   - one_clip / clip_rows: clip b of a packed batch on its own;
//   - a CPU backend counting its attention calls (CountingAttentionCpu) to see that set_kernel reaches
//     every inner step.
#pragma once
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "attention_testing.h"
#include "nn/backend_testing.h"
#include "nn/attention/heads.h"
#include "nn/attention/kernel.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace glance::testing {

// Every parameter drawn at random: LayerNorm weights around 1, everything else around 0.
inline void randomise_parameters(const nn::Module& m, uint64_t seed) {
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    const bool norm_weight = name.find("norm") != std::string::npos && name.size() >= 7 &&
                             name.compare(name.size() - 7, 7, ".weight") == 0;
    nn::init::normal_(p, norm_weight ? 1.0 : 0.0, norm_weight ? 0.2 : 0.3, &gen);
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

// Each token's clip and grid position, and the two group masks of factorised attention.
struct Coords {
  std::vector<int64_t> clip;
  std::vector<int32_t> t, h, w;
  explicit Coords(const nn::TokenLayout& layout)
      : clip(clip_ids(layout)),
        t(layout.t().to_vector<int32_t>()),
        h(layout.h().to_vector<int32_t>()),
        w(layout.w().to_vector<int32_t>()) {}
  bool same_location(int64_t i, int64_t j) const { return clip[i] == clip[j] && h[i] == h[j] && w[i] == w[j]; }
  bool same_frame(int64_t i, int64_t j) const { return clip[i] == clip[j] && t[i] == t[j]; }
};

// proj(o) with o = per-head masked softmax attention of qkv(y) in float64, scale d^-1/2:
// head `hd` of query i may see key j iff allowed(hd, i, j). y [N, D] -> [N, D] (proj's dtype).
inline Tensor masked_mha_f64(const nn::Linear& qkv, const nn::Linear& proj, const Tensor& y, int64_t heads,
                             const std::function<bool(int64_t head, int64_t i, int64_t j)>& allowed) {
  const nn::QKV p = nn::project_qkv(qkv, y, heads);  // [H, N, d] each
  const int64_t n = y.size(0), d = y.size(1) / heads;
  std::vector<double> out;
  for (int64_t hd = 0; hd < heads; ++hd) {
    auto head = [&](const Tensor& x) { return ops::narrow(x.detach(), 0, hd, 1); };
    const std::vector<double> o =
        masked_attention_f64(head(p.q), head(p.k), head(p.v), 1.0 / std::sqrt(double(d)),
                             [&](int64_t i, int64_t j) { return allowed(hd, i, j); });
    out.insert(out.end(), o.begin(), o.end());
  }
  const Tensor o = ops::to_dtype(ops::from_vector(out, {heads, n, d}), proj.weight.dtype());
  return proj.forward(nn::merge_heads(o));
}

// Clip b of a packed batch as a batch of its own, and its rows of x.
inline nn::TokenLayout one_clip(const nn::TokenLayout& layout, int64_t b) {
  const int64_t s = layout.clip_begin(b), n = layout.clip_tokens(b);
  auto rows = [&](const Tensor& x) { return ops::contiguous(ops::narrow(x, 0, s, n)); };
  return nn::TokenLayout({n}, rows(layout.t()), rows(layout.h()), rows(layout.w()), rows(layout.length()),
                         layout.grid());
}
inline Tensor clip_rows(const Tensor& x, const nn::TokenLayout& layout, int64_t b) {
  return ops::narrow(x, 0, layout.clip_begin(b), layout.clip_tokens(b));
}

// Largest |a - b| of two same-shaped tensors (for "these differ" checks).
inline double max_abs_difference(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = as_doubles(a), y = as_doubles(b);
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// True when every parameter of m has a gradient with finite entries (call after a backward).
inline ::testing::AssertionResult every_parameter_has_a_finite_gradient(const nn::Module& m) {
  for (const auto& [name, p] : m.named_parameters()) {
    if (!p.grad().defined()) return ::testing::AssertionFailure() << name << " has no gradient";
    for (double g : as_doubles(p.grad())) {
      if (!std::isfinite(g)) return ::testing::AssertionFailure() << name << " has a non-finite gradient";
    }
  }
  return ::testing::AssertionSuccess();
}

// A CPU backend that counts the calls of its attention (the built-in kernels do the work): installed with
// ScopedCpuBackend, it shows which steps of a layer reach the backend's attention.
class CountingAttentionCpu : public CpuBackend {
 public:
  int calls = 0;
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionClips& clips,
                                           const AttentionOptions& options) override {
    ++calls;
    return CpuBackend::attention_forward(q, k, v, clips, options);
  }
};

}  // namespace glance::testing
