// Nyström attention (Xiong et al., "Nyströmformer", AAAI 2021). Registered as the design "nystrom".
//
// The idea: softmax attention S = softmax(Q K^T) V costs O(n^2). Pick m "landmark" queries and keys
// (means of m contiguous segments of the sequence) and approximate the n x n softmax matrix by three
// small softmax matrices glued through the pseudo-inverse of the m x m one (the Nyström method):
//
//   per clip (n tokens, in packed (t, h, w) raster order) and head (d = D / H):
//     Q, K     <- Q * d^-1/4, K * d^-1/4                                 [n, d]  (together: 1/sqrt(d))
//     Q~, K~    = means of m contiguous segments of Q, K                 [m, d]  m = min(landmarks, n)
//     F = softmax(Q K~^T)   [n, m]     A = softmax(Q~ K~^T)   [m, m]     B = softmax(Q~ K^T)   [m, n]
//     Z ~ A^+  by the iterative pseudo-inverse (below)                   [m, m]
//     X = (F Z)(B V) + DWConv(V)                                         [n, d]
//   out = proj(heads side by side)                                       [N_total, D]
//
// Segments (the T2T-ViT version's rule, which handles n mod m != 0): the first (floor(n/m)+1)*m - n
// segments hold floor(n/m) tokens, the rest floor(n/m)+1 (the LRA code needs m | n).
//
// Iterative pseudo-inverse (Razavi et al. 2014, as in the official code):
//   Z0 = A^T / max_j sum_i A_ij            (A is row-stochastic, so this is A^T / (|A|_1 |A|_inf))
//   Z <- 1/4 Z (13 I - A Z (15 I - A Z (7 I - A Z))),   `iterations` times (official: 6)
//
// DWConv: a 1-D depthwise convolution along the sequence, one kernel of `conv_kernel` taps per head
// shared by the head's d channels (the official Conv2d(h, h, (k, 1), groups=h, bias=False) on V),
// zero-padded PER CLIP so that it never reads a neighbouring clip's tokens.
//
// Batching: every clip with n > m has exactly m landmarks, so those clips are padded to the longest one
// and stacked, [H, C, n_max, d]; each step above is then one batched op for all of them (padded tokens
// sit outside every segment mean and get -inf in B's logits, so they change nothing).
//
// Follows mlpen/Nystromformer code/attention_nystrom.py and ImageNet/T2T-ViT/models/token_nystromformer.py
// (commit 56893131 in the reference notes). Departures, each on purpose:
//   - Z0's scale is taken per (clip, head): the T2T "exact" option. The LRA code's default ("original")
//     takes the max column sum over the whole batch and all heads; in a packed batch that would make one
//     clip's output depend on the other clips it happens to be packed with. (The LRA code also reads the
//     option under a misspelt key, so "original" is what it always runs.)
//   - No padding mask: each clip is handled at its own length, so no zeroed padding rows enter the
//     segment means (the official masking lets them in).
//   - Like the official code, m == n runs exact softmax attention (through the attention kernel) instead
//     of the Nyström formula; here that happens per clip whenever the clip has <= `landmarks` tokens.
//   - Fused qkv / proj projections (timm names, as every glance design) instead of W_q, W_k, W_v, ff.
//
// RLT: the clip's kept tokens, in raster order, are the sequence; segment means run over kept tokens with
// the uneven-segment rule for each clip's own n, so "contiguous segment" and the conv's "neighbourhood"
// mean neighbours in the packed raster order (a dropped run is skipped, not a gap). Run lengths are not
// used. No class token: the model mean-pools, so nothing special is needed (the LRA models pool too).
//
// Options (AttentionConfig::option):
//   landmarks    (16) the number of landmarks m per clip, >= 1 (HuggingFace uses 64, LRA 32..256)
//   iterations   (6)  pseudo-inverse iterations, >= 0
//   conv_kernel  (33) odd taps of the depthwise conv skip; 0 turns the skip off (official LRA: 35)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/attention/kernel.h"
#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

// The sizes of the m contiguous landmark segments of n tokens (T2T rule above); they sum to n.
std::vector<int64_t> landmark_segment_sizes(int64_t n, int64_t m);

// Z ~ A^+ for every [m, m] matrix of a [..., m, m] batch (the scale of Z0 per matrix).
Tensor iterative_pseudo_inverse(const Tensor& a, int64_t iterations);

// The depthwise conv skip: v [H, N_total, d], weight [H, 1, k, 1] (PyTorch's Conv2d layout) ->
// out[h, i] = sum_t weight[h, 0, t, 0] * v[h, i + t - k/2], reading zeros outside token i's clip.
Tensor depthwise_sequence_conv(const Tensor& v, const Tensor& weight, const TokenLayout& layout);

struct NystromOptions {
  int64_t landmarks = 16;
  int64_t iterations = 6;
};

// The functional core: q, k, v [H, N_total, d] (not yet scaled) -> [H, N_total, d], without the conv
// skip. `kernel` serves the clips with n <= landmarks (exact attention).
Tensor nystrom_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const NystromOptions& options, const AttentionKernel& kernel);

class NystromAttention : public AttentionLayer {
 public:
  NystromAttention(int64_t dim, int64_t heads, bool qkv_bias, NystromOptions options, int64_t conv_kernel,
                   const std::string& kernel = "device", double proj_drop = 0.0);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;
  void set_kernel(const std::string& name) override { kernel_ = attention_kernel(name); }

  int64_t dim, heads, head_dim, conv_kernel;
  NystromOptions options;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Module> conv;  // holds `weight` [H, 1, k, 1] (named conv.weight, as in PyTorch); null if k = 0
  Tensor conv_weight;
  std::shared_ptr<Dropout> proj_drop;

 private:
  AttentionKernel kernel_;
};

std::shared_ptr<AttentionLayer> make_nystrom_attention(const AttentionConfig& config);

}  // namespace glance::nn
