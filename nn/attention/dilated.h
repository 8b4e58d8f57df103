// Dilated attention (Ding et al., "LongNet: Scaling Transformers to 1,000,000,000 Tokens", 2023).
// Registered as the design "dilated".
//
// The idea: cut the sequence into segments of length w and, inside each segment, let only every r-th
// row take part (a dilation); attention among those rows costs (w/r)^2 per segment instead of n^2 for
// the whole sequence. Several branches (w_i, r_i) -- short dense segments for local detail, long
// sparse ones for reach -- are computed and mixed with weights from their softmax denominators:
//
//   per clip (n tokens, packed (t, h, w) raster order), head j (d = D / H) and branch i:
//     segments of sl_i = min(w_i, n) consecutive tokens (the last one may be shorter: its own segment)
//     offset_ij = floor(j / (H'/r_i)),  H' = H rounded up to a multiple of r_i   (torchscale's head rule)
//     rows of a segment with local index p = offset_ij (mod r_i) attend to each other (softmax, 1/sqrt(d));
//     O_i[row] = that attention's output,  lse_i[row] = log sum_keys exp(score)   (rows not chosen: none)
//   O[row] = sum_i alpha_i O_i[row],   alpha_i = softmax over the branches that chose the row of lse_i
//   out = proj(heads side by side)                                           [N_total, D]
//
// Mixing by lse is exactly one softmax over the union of the branches' keys, a key chosen by c branches
// counted c times: sum_i (Z_i / sum_k Z_k) (sum_{key in i} e^s v / Z_i) = sum_i sum_{key in i} e^s v / sum_k Z_k.
//
// Follows torchscale/component/dilated_attention.py (commit 4d1e0e82 in the reference notes): segment
// length clamped to the sequence, the dense_to_sparse head -> offset rule (contiguous groups of heads
// per offset, not j mod r), alpha computed under torch.no_grad(). Departures:
//   - The last, partial segment is a segment of its own. torchscale zero-pads the sequence to a multiple
//     of the segment length (and of r) and, on its flash-attention path, never masks those zero keys, so
//     they enter the softmax with logit 0. Here no padded key exists.
//   - The lse of a row a branch does not choose is "absent" by construction (its alpha is 0), not by
//     torchscale's test lse == 0 (which would also catch a genuine lse of 0). A row no branch chooses
//     (possible with r > 1 everywhere, or heads < r) gets 0, as in torchscale.
//   - alpha's gradient: torchscale detaches it; option detach_weights = 0 lets it flow (the paper's
//     "one softmax over all keys" reading, whose exact gradient includes alpha's).
//   - Fused qkv / proj projections (timm names, as every glance design) instead of q/k/v/out_proj; no
//     xPos rotary embedding and no sub-LN before out_proj (torchscale model options, left out here).
//   - The branches need each row's log-sum-exp, which glance's attention kernels do not return (torchscale
//     gets it from flash-attention). So each branch computes its softmax attention itself, with the lse,
//     on one padded batch of its groups (attention_with_lse below): the design does not use the kernel
//     chosen by --attention-kernel. One padded batch of small groups is also far cheaper here than a
//     kernel call looping over thousands of tiny groups.
//
// RLT: per clip, over the clip's kept tokens in raster order: segments and dilation count kept tokens, so
// "every r-th token" and "segment" are distances in the packed order, not on the video grid. Run lengths
// are not used. No class token: the model mean-pools, so nothing special is needed.
//
// Options (AttentionConfig::option):
//   branches        (3)  the number of branches
//   w0, r0 ... w<branches-1>, r<branches-1>   segment length and dilation of each branch, each >= 1;
//                        defaults (16, 1), (32, 2), (128, 4), then w doubling from 256 and r = 2^i
//                        (with the tiny model's 128 tokens a clip, branch 2 is one segment: a global,
//                        4x dilated view; torchscale's LongViT uses w = 64..1024, r = 1..16)
//   detach_weights  (1)  1: no gradient through alpha (torchscale); 0: alpha is differentiated too
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/attention/layer.h"
#include "nn/dropout.h"
#include "nn/linear.h"

namespace glance::nn {

struct DilatedBranch {
  int64_t segment = 16;  // w: segment length (clamped to the clip length)
  int64_t rate = 1;      // r: dilation
};

// torchscale's rule: head j of H takes the rows with local index = floor(j / (H'/r)) (mod r),
// H' = H rounded up to a multiple of r.
int64_t dilated_head_offset(int64_t head, int64_t heads, int64_t rate);

// The log-sum-exp given to a (row, head) that a branch does not choose: its alpha comes out 0.
constexpr double kAbsentLse = -1e30;

// Softmax attention on a padded batch of groups, with the log-sum-exp of each row's scores:
//   q, k, v [..., G, L, d], key_bias [..., G, 1, L] (0 for a real key, -inf for padding)
//   s = q k^T * scale + key_bias     out = softmax(s) v  [..., G, L, d]     lse = log sum_keys exp(s)  [..., G, L]
// The lse is recorded for autograd only if `lse_needs_grad`.
struct AttentionWithLse {
  Tensor out, lse;
};
AttentionWithLse attention_with_lse(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_bias,
                                    double scale, bool lse_needs_grad);

// One branch on q, k, v [H, N_total, d]: out [H, N_total, d] (0 where the branch does not choose the
// row for that head), lse [H, N_total] (kAbsentLse there).
struct DilatedBranchOutput {
  Tensor out, lse;
};
DilatedBranchOutput dilated_branch(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                                   const DilatedBranch& branch, double scale, bool lse_needs_grad);

// All branches mixed: q, k, v [H, N_total, d] -> [H, N_total, d].
Tensor dilated_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const std::vector<DilatedBranch>& branches, double scale, bool detach_weights);

class DilatedAttention : public AttentionLayer {
 public:
  DilatedAttention(int64_t dim, int64_t heads, bool qkv_bias, std::vector<DilatedBranch> branches,
                   bool detach_weights = true, double proj_drop = 0.0);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;
  // set_kernel: the default no-op, since the branches compute their attention in attention_with_lse.

  int64_t dim, heads, head_dim;
  std::vector<DilatedBranch> branches;
  bool detach_weights;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> proj_drop;
};

std::shared_ptr<AttentionLayer> make_dilated_attention(const AttentionConfig& config);

}  // namespace glance::nn
