// The run-length tokenizer (RLT, Choudhury et al. 2024): cut a clip into tubelets, drop the ones that did
// not change since the previous time step, and tell each kept token how long its run lasts.
//
//   clip [T, 3, H, W] (float, ImageNet-normalised)
//     -> tubelet grid T' x H' x W'   (T' = T / tubelet, H' = H / patch, W' = W / patch)
//     -> static score per tubelet     [T', H', W']   (t = 0: +infinity, so the first time step is kept)
//     -> keep mask                     score > tau    (strict, as in the paper's code)
//     -> run lengths                   distance to the next kept tubelet at the same (h, w), or to T'
//     -> TokenizedClip: the kept tubelets' pixels [N, 3*tubelet*patch*patch] and their (t, h, w, length),
//        in (t, h, w) raster order.
//
// The static score of tubelet (t, h, w) is the mean |difference| over the patch and the 3 channels between
// the LAST frame of tubelet t and the FIRST frame of tubelet t-1 (CompareMode::Adjacent, what the paper's
// code computes), or the first frame of the run's first tubelet (CompareMode::Anchor: a slow drift that
// stays below tau at every step cannot hide a large total change). See docs/06-run-length-tokenization.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/token_layout.h"
#include "tensor/random.h"

namespace glance::rlt {

enum class DropPolicy {
  Dense,   // keep every tubelet (the baseline: lengths all 1)
  RLT,     // drop static tubelets (the method)
  Random,  // keep as many tubelets as RLT would in this clip, chosen at random (the paper's control)
};
enum class CompareMode { Adjacent, Anchor };

DropPolicy parse_drop_policy(const std::string& name);  // "dense" | "rlt" | "random"
CompareMode parse_compare_mode(const std::string& name); // "adjacent" | "anchor"
const char* policy_name(DropPolicy policy);
const char* compare_name(CompareMode mode);

struct TokenizerConfig {
  int64_t tubelet = 2;   // frames per tubelet
  int64_t patch = 16;    // pixels per side
  double tau = 0.1;      // keep iff score > tau (normalised units; 0.1 is about 6 grey levels)
  DropPolicy policy = DropPolicy::RLT;
  CompareMode compare = CompareMode::Adjacent;
};

// The token grid of a clip of T frames of H x W pixels. Throws when the sizes do not divide.
nn::Grid token_grid(int64_t frames, int64_t height, int64_t width, const TokenizerConfig& config);

// The static score of every tubelet, [T' * H' * W'] in (t, h, w) order; +infinity at t = 0.
// Anchor mode needs tau to know where runs start, so it is part of the signature.
std::vector<float> static_scores(const Tensor& clip, const TokenizerConfig& config);

// keep[i] = 1 for kept tubelets, (t, h, w) order.
std::vector<uint8_t> keep_mask(const Tensor& clip, const TokenizerConfig& config, Generator* gen = nullptr);

// DropPolicy::Random's mask: `kept` of the `tubelets` positions, drawn uniformly with `gen` (the first `kept`
// entries of a random permutation). Both tokenizers draw through this, so they keep the same tokens.
std::vector<uint8_t> random_keep_mask(int64_t tubelets, int64_t kept, Generator* gen);

// The run length of every kept tubelet (0 for dropped ones), (t, h, w) order: the distance in time steps
// to the next kept tubelet at the same (h, w), or to the end of the clip.
std::vector<int32_t> run_lengths(const std::vector<uint8_t>& keep, const nn::Grid& grid);

struct TokenizedClip {
  nn::Grid grid;
  Tensor tubelets;                  // float32 [N, 3 * tubelet * patch * patch], each flattened as (c, dt, y, x)
  std::vector<int32_t> t, h, w;     // [N] where each token's run starts
  std::vector<int32_t> length;      // [N] run length in tubelets, >= 1
  int64_t tokens() const { return static_cast<int64_t>(length.size()); }
  int64_t grid_tokens() const { return grid.size(); }  // tokens without dropping
};

// The whole tokenizer for one clip [T, 3, H, W]. gen is used by DropPolicy::Random only.
TokenizedClip tokenize(const Tensor& clip, const TokenizerConfig& config, Generator* gen = nullptr);

// Every tubelet of a clip, flattened as (c, dt, y, x): [T' * H' * W', 3 * tubelet * patch * patch].
Tensor tubelets_of(const Tensor& clip, const TokenizerConfig& config);

// A batch of tokenized clips as one packed sequence: tubelets [N_total, K] and their TokenLayout.
struct PackedClips {
  Tensor tubelets;
  nn::TokenLayout layout;
  int64_t grid_tokens = 0;  // tokens the batch would have without dropping
};
PackedClips pack_clips(const std::vector<TokenizedClip>& clips);

}  // namespace glance::rlt
