#include "rlt/batch_tokenizer.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::rlt {

namespace {

using ops::binary;
using ops::narrow;
using ops::reshape;
using ops::select;

// frames [B, T, 3, H, W] -> the view [B, T', u, 3, H', p, W', p] (validated; no copy when contiguous).
Tensor tubelet_view(const Tensor& frames, const TokenizerConfig& c, nn::Grid* grid) {
  if (frames.dim() != 5 || frames.size(2) != 3) {
    throw std::invalid_argument("tokenize_batch: expected frames [B, T, 3, H, W], got " + shape_str(frames.shape()));
  }
  if (frames.dtype() != DType::Float32) {
    throw std::invalid_argument("tokenize_batch: expected float32 frames, got " + std::string(dtype_name(frames.dtype())));
  }
  if (frames.size(0) == 0) throw std::invalid_argument("tokenize_batch: an empty batch");
  *grid = token_grid(frames.size(1), frames.size(3), frames.size(4), c);
  const int64_t B = frames.size(0), u = c.tubelet, p = c.patch;
  return reshape(ops::contiguous(frames), {B, grid->t, u, 3, grid->h, p, grid->w, p});
}

// Mean |a - b| over the channel and pixel axes of two [B, (T'), 3, H', p, W', p] frame views, summed in float64
// and rounded to float32 exactly as tokenizer.cpp's patch_mean_abs_diff: [B, (T'), H', W'] float32.
Tensor patch_mean_abs_diff(const Tensor& a, const Tensor& b, int64_t patch) {
  const int64_t n = a.dim();  // the (c, y, x) axes are n-5, n-3, n-1
  const Tensor diff = ops::to_dtype(ops::unary(UnaryOp::Abs, binary(BinaryOp::Sub, a, b)), DType::Float64);
  const Tensor sum = ops::sum(diff, {n - 5, n - 3, n - 1});
  return ops::to_dtype(binary(BinaryOp::Div, sum, double(3 * patch * patch)), DType::Float32);
}

// Scores from the tubelet view v [B, T', u, 3, H', p, W', p].
Tensor scores_of(const Tensor& v, const nn::Grid& g, const TokenizerConfig& c) {
  const int64_t B = v.size(0), u = c.tubelet;
  const Tensor first = select(v, 2, 0), last = select(v, 2, u - 1);  // [B, T', 3, H', p, W', p]
  const Tensor start = ops::full({B, 1, g.h, g.w}, std::numeric_limits<double>::infinity(), DType::Float32, v.device());
  if (g.t == 1) return start;
  if (c.compare == CompareMode::Adjacent) {
    // last frame of tubelet t vs first frame of tubelet t - 1, for every t >= 1 at once
    const Tensor s = patch_mean_abs_diff(narrow(last, 1, 1, g.t - 1), narrow(first, 1, 0, g.t - 1), c.patch);
    return ops::concat({start, s}, 1);
  }
  // Anchor: the reference is the first frame of the current run's first tubelet, which depends on the
  // decisions at earlier t, so sweep forward in t (T' steps, each over all clips and patches).
  std::vector<Tensor> per_t{start};
  Tensor anchor = select(first, 1, 0);  // [B, 3, H', p, W', p]
  for (int64_t t = 1; t < g.t; ++t) {
    const Tensor s = patch_mean_abs_diff(select(last, 1, t), anchor, c.patch);  // [B, H', W']
    per_t.push_back(ops::unsqueeze(s, 1));
    const Tensor kept = binary(BinaryOp::Gt, ops::to_dtype(s, DType::Float64), c.tau);
    anchor = ops::where(reshape(kept, {B, 1, g.h, 1, g.w, 1}), select(first, 1, t), anchor);  // a kept tubelet starts a run
  }
  return ops::concat(per_t, 1);
}

// keep [B, T', H', W'] (bool, host) for DropPolicy::Random: per clip, as many tokens as RLT keeps there, at
// places drawn with that clip's generator through random_keep_mask, as tokenizer.cpp draws them.
std::vector<uint8_t> random_keep(const std::vector<int32_t>& rlt_length, int64_t B, int64_t G,
                                 std::vector<Generator>* gens) {
  if (gens == nullptr || static_cast<int64_t>(gens->size()) != B) {
    throw std::invalid_argument("tokenize_batch: the random policy needs one generator per clip (" +
                                std::to_string(B) + ")");
  }
  std::vector<uint8_t> keep(static_cast<size_t>(B * G), 0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t kept = 0;
    for (int64_t i = 0; i < G; ++i) kept += rlt_length[b * G + i] > 0;
    const std::vector<uint8_t> clip = random_keep_mask(G, kept, &(*gens)[b]);
    std::copy(clip.begin(), clip.end(), keep.begin() + b * G);
  }
  return keep;
}

}  // namespace

Tensor static_scores_batch(const Tensor& frames, const TokenizerConfig& config) {
  nn::Grid g;
  const Tensor v = tubelet_view(frames, config, &g);
  return scores_of(v, g, config);
}

Tensor run_lengths_batch(const Tensor& keep) {
  if (keep.dim() != 4 || keep.dtype() != DType::Bool) {
    throw std::invalid_argument("run_lengths_batch: expected a bool keep mask [B, T', H', W'], got " +
                                std::string(dtype_name(keep.dtype())) + " " + shape_str(keep.shape()));
  }
  const int64_t B = keep.size(0), T = keep.size(1), H = keep.size(2), W = keep.size(3);
  // Walking backwards in time, `next` holds where the following run starts at each (clip, h, w).
  Tensor next = ops::full({B, H, W}, double(T), DType::Int32, keep.device());
  const Tensor zero = ops::zeros({B, H, W}, DType::Int32, keep.device());
  std::vector<Tensor> length(static_cast<size_t>(T));
  for (int64_t t = T - 1; t >= 0; --t) {
    const Tensor kept = select(keep, 1, t);
    length[t] = ops::where(kept, binary(BinaryOp::Sub, next, double(t)), zero);
    next = ops::where(kept, ops::full({B, H, W}, double(t), DType::Int32, keep.device()), next);
  }
  return ops::stack(length, 1);
}

PackedClips tokenize_batch(const Tensor& frames, const TokenizerConfig& config, std::vector<Generator>* gens) {
  nn::Grid g;
  const Tensor v = tubelet_view(frames, config, &g);
  const int64_t B = v.size(0), G = g.size(), u = config.tubelet, p = config.patch, K = 3 * u * p * p;

  // 1. keep mask and run lengths, on the device
  Tensor keep;
  if (config.policy == DropPolicy::Dense) {
    keep = ops::full({B, g.t, g.h, g.w}, 1.0, DType::Bool, frames.device());
  } else {
    keep = binary(BinaryOp::Gt, ops::to_dtype(scores_of(v, g, config), DType::Float64), config.tau);  // strict
  }
  // 2. the only download: the run lengths (0 = dropped), B * G int32
  std::vector<int32_t> length = run_lengths_batch(keep).to_vector<int32_t>();
  if (config.policy == DropPolicy::Random) {
    // The control experiment: its mask is drawn on the host from RLT's counts, its lengths follow from it.
    const std::vector<uint8_t> random = random_keep(length, B, G, gens);
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<uint8_t> clip(random.begin() + b * G, random.begin() + (b + 1) * G);
      const std::vector<int32_t> l = run_lengths(clip, g);
      std::copy(l.begin(), l.end(), length.begin() + b * G);
    }
  }

  // 3. the layout (host metadata) and the gather index of the kept tubelets, in (t, h, w) raster order
  std::vector<int64_t> counts(static_cast<size_t>(B), 0), rows;
  std::vector<int32_t> tt, hh, ww, ll;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < G; ++i) {
      const int32_t l = length[b * G + i];
      if (l == 0) continue;
      ++counts[b];
      rows.push_back(b * G + i);
      tt.push_back(static_cast<int32_t>(i / (g.h * g.w)));
      hh.push_back(static_cast<int32_t>(i / g.w % g.h));
      ww.push_back(static_cast<int32_t>(i % g.w));
      ll.push_back(l);
    }
  }

  // 4. the tubelets, flattened as (c, dt, y, x) like tokenizer.cpp: [B, T', u, 3, H', p, W', p] ->
  //    [B, T', H', W', 3, u, p, p] -> [B*G, K] (one pass), then the kept rows (a second pass, skipped when
  //    every tubelet is kept).
  const Tensor all = reshape(ops::permute(v, {0, 1, 4, 6, 3, 2, 5, 7}), {B * G, K});
  PackedClips packed;
  const bool everything = static_cast<int64_t>(rows.size()) == B * G;
  packed.tubelets = everything ? ops::contiguous(all) : ops::index_select(all, 0, ops::from_vector(rows));
  packed.layout = nn::TokenLayout(counts, ops::from_vector(tt), ops::from_vector(hh), ops::from_vector(ww),
                                  ops::from_vector(ll), g);
  packed.grid_tokens = B * G;
  return packed;
}

}  // namespace glance::rlt
