// MViT v2 multi-head pooling attention (Fan et al. 2021, Li et al. 2022), registered as "pooling".
//
// Follows slowfast/models/attention.py (SlowFast commit 287ec007, MultiScaleAttention with mode "conv",
// pool_first=False, residual_pooling=True) and MultiScaleBlock's max-pool skip. With q, k, v [H, N, d]:
//
//   q, k, v = qkv(x)                                          each [H, N, d]  (d = D / H)
//   for each of q, k, v, on the token grid of each clip (heads are the batch axis):
//     [H*B, d, T', H', W'] --Conv3d(d, d, kernel^3, stride (1, s, s), padding kernel/2,
//                                   groups = d, bias = False)--> [H*B, d, T', H'/s, W'/s]
//     --> rows [H, L_s, d] --> LayerNorm(d)                  (norm_q, norm_k, norm_v)
//   (q with stride q_stride, k and v with kv_stride; the conv is depthwise and SHARED ACROSS HEADS)
//   o = softmax((q d^-1/2) k^T) v                             [H, L_q, d]   (within each clip)
//   o = o + q                                                 residual pooling (the pooled, unscaled q)
//   out = proj(o as [L_q, D])
//
// As in MViT, a pooling whose kernel and stride are both 1 is skipped entirely (no conv, no norm): with
// kernel = q_stride = kv_stride = 1 and residual_pooling = 0 the layer is ordinary multi-head attention.
//
// The block: x' = skip(x) + attn(norm1(x)). With q_stride s > 1 the layer downsamples; the skip is MViT's
// MaxPool3d of x on the grid, kernel (1, s+1, s+1), stride (1, s, s), padding (0, (s+1)/2, (s+1)/2), and
// output_layout is the pooled grid (T' x ceil(H'/s) x ceil(W'/s) tokens per clip, every length 1).
//
// RLT tokens (not native: the conv needs the grid). Adapted with the run-expansion (run_expansion.h):
//   - q, k, v of the kept tokens are copied to every cell of their run (cover), giving the dense grid;
//   - K and V are pooled on it: every query of a clip attends to all pooled K/V cells of its clip;
//   - q is pooled on it too; with q_stride = 1 it is read back at the kept tokens' own cells, so the output
//     keeps the RLT layout (one row per kept token). With q_stride > 1 the output is the dense pooled grid.
//   So the RLT layer equals the dense layer run on the run-expanded clip and read at the kept tokens.
//   RLT's savings survive only in the attention matmuls (L_q = kept tokens); the convs see the full grid.
//   A skipped pooling (kernel = stride = 1) does not densify: those tokens stay the kept tokens.
//
// Departures from the official code, and why:
//   - No CLS token (glance's model has none; it pools by mean): MViT's CLS handling (kept out of the
//     pooling, re-attached before the norm, excluded from the residual pooling) is dropped.
//   - Width and head changes (DIM_MUL, HEAD_MUL, dim_mul_in_att) are left out: the block keeps its width,
//     so the skip needs no projection.
//   - The decomposed relative position bias of v2 (rel_pos_spatial/temporal) is left out.
//   - Strides are spatial only, (1, s, s), and the same options go to every block of the model (no stage
//     schedule: AttentionConfig has no block index). MViT's adaptive KV stride divides kv_stride by the
//     stage's q strides; here kv_stride is used as given.
//   - q_stride must be 1 or even and the kernel odd: then the conv's grid and the max-pool skip's grid are
//     both ceil(H'/s) (with an odd s, MViT's kernel s+1 skip gives a different grid when s divides H').
//   - The q, k, v convs are initialised as torch's Conv3d (U(+-1/sqrt(kernel^3))).
//
// Options: kernel (pooling kernel size per axis, odd, default 3), q_stride (1 or even, default 1),
//          kv_stride (default 2), residual_pooling (1 or 0, default 1).
#pragma once
#include <memory>
#include <string>

#include "nn/attention/kernel.h"
#include "nn/attention/layer.h"
#include "nn/attention/run_expansion.h"
#include "nn/dropout.h"
#include "nn/functional/conv3d.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

namespace glance::nn {

// A depthwise Conv3d without bias, applied with a spatial stride: weight [C, 1, k, k, k] (torch's layout).
class DepthwiseConv3d : public Module {
 public:
  DepthwiseConv3d(int64_t channels, int64_t kernel, int64_t spatial_stride);
  Tensor forward(const Tensor& x) const;  // [B, C, T, H, W] -> [B, C, T, ceil(H/s), ceil(W/s)]
  Size3 output_size(const Grid& g) const;

  int64_t channels, kernel, stride;
  Tensor weight;
};

class PoolingAttention : public AttentionLayer {
 public:
  PoolingAttention(int64_t dim, int64_t heads, bool qkv_bias, const std::string& kernel_name, double proj_drop,
                   int64_t pool_kernel, int64_t q_stride, int64_t kv_stride, bool residual_pooling);
  Tensor forward(const Tensor& x, const TokenLayout& layout) const override;
  Tensor skip(const Tensor& x, const TokenLayout& layout) const override;
  TokenLayout output_layout(const TokenLayout& layout) const override;
  void set_kernel(const std::string& name) override;

  int64_t dim, heads, head_dim, pool_kernel, q_stride, kv_stride;
  bool residual_pooling;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> proj_drop;
  // Null when that pooling is skipped (kernel and stride both 1), as in MViT.
  std::shared_ptr<DepthwiseConv3d> pool_q, pool_k, pool_v;
  std::shared_ptr<LayerNorm> norm_q, norm_k, norm_v;

 private:
  // rows [H, B * T'H'W', d] on the dense grid g -> conv -> LayerNorm -> [H, B * L_pooled, d].
  Tensor pool(const Tensor& rows, const DepthwiseConv3d& conv, const LayerNorm& norm, int64_t batch,
              const Grid& g) const;
  void check_input(const Tensor& x, const TokenLayout& layout, const char* what) const;

  std::string kernel_name_;
  AttentionKernel kernel_;
};

// Softmax attention of queries and keys that are different token sets, clip by clip:
//   q [H, Nq, d] with clip b's queries at rows q_offsets[b] .. q_offsets[b+1]; k, v [H, Nk, d] likewise.
// When every clip has as many queries as keys this is self-attention-shaped and goes to `kernel`; otherwise
// (pooled keys) each clip's scores [H, nq, nk] are materialised with differentiable matmul and softmax.
Tensor clipwise_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& q_offsets,
                          const std::vector<int64_t>& kv_offsets, const AttentionKernel& kernel, double scale);

std::shared_ptr<AttentionLayer> make_pooling_attention(const AttentionConfig& config);

}  // namespace glance::nn
