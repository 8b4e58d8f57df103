#include "rlt/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::rlt {

DropPolicy parse_drop_policy(const std::string& name) {
  if (name == "dense") return DropPolicy::Dense;
  if (name == "rlt") return DropPolicy::RLT;
  if (name == "random") return DropPolicy::Random;
  throw std::invalid_argument("unknown drop policy '" + name + "' (choose dense, rlt or random)");
}

CompareMode parse_compare_mode(const std::string& name) {
  if (name == "adjacent") return CompareMode::Adjacent;
  if (name == "anchor") return CompareMode::Anchor;
  throw std::invalid_argument("unknown compare mode '" + name + "' (choose adjacent or anchor)");
}

const char* policy_name(DropPolicy policy) {
  switch (policy) {
    case DropPolicy::Dense: return "dense";
    case DropPolicy::RLT: return "rlt";
    case DropPolicy::Random: return "random";
  }
  return "?";
}

const char* compare_name(CompareMode mode) { return mode == CompareMode::Adjacent ? "adjacent" : "anchor"; }

nn::Grid token_grid(int64_t frames, int64_t height, int64_t width, const TokenizerConfig& c) {
  if (c.tubelet < 1 || c.patch < 1) {
    throw std::invalid_argument("tokenizer: tubelet (" + std::to_string(c.tubelet) + ") and patch (" +
                                std::to_string(c.patch) + ") must be >= 1");
  }
  if (frames % c.tubelet != 0 || height % c.patch != 0 || width % c.patch != 0 || frames == 0 || height == 0 ||
      width == 0) {
    throw std::invalid_argument("tokenizer: a clip of " + std::to_string(frames) + " frames of " +
                                std::to_string(height) + " x " + std::to_string(width) +
                                " pixels does not divide into tubelets of " + std::to_string(c.tubelet) + " x " +
                                std::to_string(c.patch) + " x " + std::to_string(c.patch));
  }
  return {frames / c.tubelet, height / c.patch, width / c.patch};
}

namespace {

// The clip as a contiguous float32 [T, 3, H, W] array, with its grid. Validates the shape.
struct ClipView {
  Tensor storage;  // keeps the data alive
  const float* data = nullptr;
  int64_t T = 0, H = 0, W = 0;
  nn::Grid grid;
  // pixel (frame f, channel c, row y, column x)
  float at(int64_t f, int64_t c, int64_t y, int64_t x) const { return data[((f * 3 + c) * H + y) * W + x]; }
};

ClipView view_clip(const Tensor& clip, const TokenizerConfig& config) {
  if (clip.dim() != 4 || clip.size(1) != 3) {
    throw std::invalid_argument("tokenizer: expected a clip [T, 3, H, W], got " + shape_str(clip.shape()));
  }
  if (clip.dtype() != DType::Float32) {
    throw std::invalid_argument("tokenizer: expected a float32 clip, got " + std::string(dtype_name(clip.dtype())));
  }
  ClipView v;
  v.storage = ops::contiguous(clip);
  v.data = v.storage.data<float>();
  v.T = clip.size(0), v.H = clip.size(2), v.W = clip.size(3);
  v.grid = token_grid(v.T, v.H, v.W, config);
  return v;
}

// Mean |frame_a - frame_b| over the patch (h, w) and the 3 channels.
float patch_mean_abs_diff(const ClipView& v, int64_t frame_a, int64_t frame_b, int64_t h, int64_t w, int64_t p) {
  double sum = 0.0;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = h * p; y < (h + 1) * p; ++y) {
      for (int64_t x = w * p; x < (w + 1) * p; ++x) sum += std::fabs(v.at(frame_a, c, y, x) - v.at(frame_b, c, y, x));
    }
  }
  return static_cast<float>(sum / double(3 * p * p));
}

std::vector<float> scores_of(const ClipView& v, const TokenizerConfig& c) {
  const nn::Grid& g = v.grid;
  const int64_t u = c.tubelet;
  std::vector<float> score(static_cast<size_t>(g.size()), std::numeric_limits<float>::infinity());
  for (int64_t h = 0; h < g.h; ++h) {
    for (int64_t w = 0; w < g.w; ++w) {
      int64_t anchor = 0;  // the first tubelet of the current run at (h, w)
      for (int64_t t = 1; t < g.t; ++t) {
        const int64_t reference = c.compare == CompareMode::Adjacent ? t - 1 : anchor;
        // last frame of tubelet t vs first frame of the reference tubelet
        const float s = patch_mean_abs_diff(v, t * u + u - 1, reference * u, h, w, c.patch);
        score[g.index(t, h, w)] = s;
        if (s > c.tau) anchor = t;  // a kept tubelet starts a new run
      }
    }
  }
  return score;
}

}  // namespace

std::vector<float> static_scores(const Tensor& clip, const TokenizerConfig& config) {
  return scores_of(view_clip(clip, config), config);
}

namespace {

std::vector<uint8_t> keep_mask_of(const ClipView& v, const TokenizerConfig& config, Generator* gen) {
  const int64_t n = v.grid.size();
  std::vector<uint8_t> keep(static_cast<size_t>(n), 1);
  if (config.policy == DropPolicy::Dense) return keep;
  const std::vector<float> score = scores_of(v, config);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    keep[i] = score[i] > config.tau ? 1 : 0;  // strict: a score equal to tau is static
    kept += keep[i];
  }
  // Random: the same number of tokens as RLT keeps here, at uniformly random places.
  return config.policy == DropPolicy::Random ? random_keep_mask(n, kept, gen) : keep;
}

}  // namespace

std::vector<uint8_t> random_keep_mask(int64_t tubelets, int64_t kept, Generator* gen) {
  const std::vector<int64_t> order = ops::randperm(tubelets, gen).to_vector<int64_t>();
  std::vector<uint8_t> keep(static_cast<size_t>(tubelets), 0);
  for (int64_t i = 0; i < kept; ++i) keep[order[i]] = 1;
  return keep;
}

std::vector<uint8_t> keep_mask(const Tensor& clip, const TokenizerConfig& config, Generator* gen) {
  return keep_mask_of(view_clip(clip, config), config, gen);
}

std::vector<int32_t> run_lengths(const std::vector<uint8_t>& keep, const nn::Grid& g) {
  if (static_cast<int64_t>(keep.size()) != g.size()) {
    throw std::invalid_argument("run_lengths: mask of " + std::to_string(keep.size()) + " entries for a grid of " +
                                std::to_string(g.size()) + " tubelets");
  }
  std::vector<int32_t> length(keep.size(), 0);
  for (int64_t h = 0; h < g.h; ++h) {
    for (int64_t w = 0; w < g.w; ++w) {
      int64_t next_kept = g.t;  // walking backwards in time: where the following run starts
      for (int64_t t = g.t - 1; t >= 0; --t) {
        const int64_t i = g.index(t, h, w);
        if (keep[i]) {
          length[i] = static_cast<int32_t>(next_kept - t);
          next_kept = t;
        }
      }
    }
  }
  return length;
}

Tensor tubelets_of(const Tensor& clip, const TokenizerConfig& config) {
  TokenizerConfig dense = config;
  dense.policy = DropPolicy::Dense;
  return tokenize(clip, dense).tubelets;
}

TokenizedClip tokenize(const Tensor& clip, const TokenizerConfig& config, Generator* gen) {
  const ClipView v = view_clip(clip, config);
  const nn::Grid& g = v.grid;
  const std::vector<uint8_t> keep = keep_mask_of(v, config, gen);
  const std::vector<int32_t> length = run_lengths(keep, g);

  TokenizedClip out;
  out.grid = g;
  int64_t kept = 0;
  for (uint8_t k : keep) kept += k;
  const int64_t u = config.tubelet, p = config.patch, K = 3 * u * p * p;
  out.tubelets = Tensor::empty({kept, K}, DType::Float32);
  float* dst = out.tubelets.data<float>();
  // Tokens in (t, h, w) raster order; coordinates and lengths are pushed in the same loop, so they cannot
  // drift apart (the paper's code computes lengths in (h, w, t) order and adds them to (t, h, w) tokens).
  for (int64_t t = 0; t < g.t; ++t) {
    for (int64_t h = 0; h < g.h; ++h) {
      for (int64_t w = 0; w < g.w; ++w) {
        const int64_t i = g.index(t, h, w);
        if (!keep[i]) continue;
        out.t.push_back(static_cast<int32_t>(t));
        out.h.push_back(static_cast<int32_t>(h));
        out.w.push_back(static_cast<int32_t>(w));
        out.length.push_back(length[i]);
        // flattened as (c, dt, y, x): the order of a Conv3d kernel [D, 3, u, p, p]
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t dt = 0; dt < u; ++dt) {
            for (int64_t y = 0; y < p; ++y) {
              const float* row = &v.data[(((t * u + dt) * 3 + c) * v.H + h * p + y) * v.W + w * p];
              std::copy(row, row + p, dst);
              dst += p;
            }
          }
        }
      }
    }
  }
  return out;
}

PackedClips pack_clips(const std::vector<TokenizedClip>& clips) {
  if (clips.empty()) throw std::invalid_argument("pack_clips: no clips");
  const nn::Grid grid = clips[0].grid;
  const int64_t K = clips[0].tubelets.size(1);
  std::vector<int64_t> counts;
  std::vector<int32_t> t, h, w, length;
  std::vector<Tensor> parts;
  PackedClips packed;
  for (size_t b = 0; b < clips.size(); ++b) {
    const TokenizedClip& c = clips[b];
    if (c.grid != grid || c.tubelets.size(1) != K) {
      throw std::invalid_argument("pack_clips: clip " + std::to_string(b) + " has grid " + nn::to_string(c.grid) +
                                  " and " + std::to_string(c.tubelets.size(1)) + " values per tubelet; clip 0 has " +
                                  nn::to_string(grid) + " and " + std::to_string(K));
    }
    counts.push_back(c.tokens());
    t.insert(t.end(), c.t.begin(), c.t.end());
    h.insert(h.end(), c.h.begin(), c.h.end());
    w.insert(w.end(), c.w.begin(), c.w.end());
    length.insert(length.end(), c.length.begin(), c.length.end());
    parts.push_back(c.tubelets);
    packed.grid_tokens += c.grid_tokens();
  }
  packed.tubelets = ops::concat(parts, 0);
  packed.layout = nn::TokenLayout(counts, ops::from_vector(t), ops::from_vector(h), ops::from_vector(w),
                                  ops::from_vector(length), grid);
  return packed;
}

}  // namespace glance::rlt
