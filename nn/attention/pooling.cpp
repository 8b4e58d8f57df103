#include "nn/attention/pooling.h"

#include <cmath>
#include <stdexcept>

#include "nn/attention/heads.h"
#include "nn/functional/pool3d.h"
#include "nn/init.h"

namespace glance::nn {

DepthwiseConv3d::DepthwiseConv3d(int64_t c, int64_t k, int64_t s) : channels(c), kernel(k), stride(s) {
  weight = register_parameter("weight", ops::empty({c, 1, k, k, k}));
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // torch's Conv3d default: U(+-1/sqrt(fan_in)), fan_in = k^3
}

Size3 DepthwiseConv3d::output_size(const Grid& g) const {
  return conv3d_output_size({1, channels, g.t, g.h, g.w}, {kernel, kernel, kernel}, {1, stride, stride},
                            {kernel / 2, kernel / 2, kernel / 2}, "pooling attention");
}

Tensor DepthwiseConv3d::forward(const Tensor& x) const {
  Conv3dOptions o;
  o.stride = {1, stride, stride};
  o.padding = {kernel / 2, kernel / 2, kernel / 2};
  o.groups = channels;  // depthwise: channel c is filtered by weight[c] alone
  return conv3d(x, weight, Tensor(), o);
}

PoolingAttention::PoolingAttention(int64_t d, int64_t h, bool qkv_bias, const std::string& kernel_name, double drop,
                                   int64_t k, int64_t qs, int64_t kvs, bool residual)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), pool_kernel(k), q_stride(qs), kv_stride(kvs),
      residual_pooling(residual) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("pooling attention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  if (k < 1 || k % 2 == 0) {
    throw std::invalid_argument("pooling attention: option kernel = " + std::to_string(k) +
                                " must be odd and >= 1 (padding kernel/2 keeps the grid at ceil(H'/stride))");
  }
  if (qs < 1 || (qs > 1 && qs % 2 != 0)) {
    throw std::invalid_argument("pooling attention: option q_stride = " + std::to_string(qs) +
                                " must be 1 or even (MViT's max-pool skip, kernel q_stride+1, then matches the "
                                "conv's grid)");
  }
  if (kvs < 1) {
    throw std::invalid_argument("pooling attention: option kv_stride = " + std::to_string(kvs) + " must be >= 1");
  }
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
  // MViT skips a pooling whose kernel and stride are both 1 (attention.py: kernel_q = () ...).
  if (!(k == 1 && qs == 1)) {
    pool_q = register_module("pool_q", std::make_shared<DepthwiseConv3d>(head_dim, k, qs));
    norm_q = register_module("norm_q", std::make_shared<LayerNorm>(head_dim, 1e-6));
  }
  if (!(k == 1 && kvs == 1)) {
    pool_k = register_module("pool_k", std::make_shared<DepthwiseConv3d>(head_dim, k, kvs));
    norm_k = register_module("norm_k", std::make_shared<LayerNorm>(head_dim, 1e-6));
    pool_v = register_module("pool_v", std::make_shared<DepthwiseConv3d>(head_dim, k, kvs));
    norm_v = register_module("norm_v", std::make_shared<LayerNorm>(head_dim, 1e-6));
  }
  set_kernel(kernel_name);
}

void PoolingAttention::set_kernel(const std::string& name) {
  kernel_ = attention_kernel(name);
  kernel_name_ = name;
}

void PoolingAttention::check_input(const Tensor& x, const TokenLayout& layout, const char* what) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument(std::string("pooling attention ") + what + ": expected x [" +
                                std::to_string(layout.total_tokens()) + ", " + std::to_string(dim) +
                                "] for this layout, got " + shape_str(x.shape()));
  }
}

Tensor PoolingAttention::pool(const Tensor& rows, const DepthwiseConv3d& conv, const LayerNorm& norm, int64_t batch,
                              const Grid& g) const {
  // [H, B*T'H'W', d] -> [H*B, T', H', W', d] -> [H*B, d, T', H', W']: the heads are batch entries, so one
  // depthwise conv serves every head (MViT: tensor.reshape(B * N, T, H, W, C).permute(0, 4, 1, 2, 3)).
  Tensor grid = permute(reshape(rows, {heads * batch, g.t, g.h, g.w, head_dim}), {0, 4, 1, 2, 3});
  Tensor pooled = conv.forward(grid);  // [H*B, d, To, Ho, Wo]
  const int64_t cells = pooled.size(2) * pooled.size(3) * pooled.size(4);
  // back to rows, clip after clip in raster order: [H*B, To, Ho, Wo, d] -> [H, B*L, d]; then norm over d
  return norm.forward(reshape(permute(pooled, {0, 2, 3, 4, 1}), {heads, batch * cells, head_dim}));
}

Tensor PoolingAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  check_input(x, layout, "forward");
  const int64_t B = layout.batch_size();
  const Grid& g = layout.grid();
  QKV p = project_qkv(*qkv, x, heads);  // each [H, N, d]

  // The dense grid of every clip, rebuilt from the runs (the identity on a dense batch).
  RunExpansion grid_of;
  if (pool_q || pool_k) grid_of = run_expansion(layout, "pooling attention");

  // Queries: the kept tokens themselves (pooling skipped), pooled q read back at the kept tokens
  // (q_stride 1), or the pooled grid (q_stride > 1). q_offsets: where each clip's queries start.
  Tensor q = p.q;
  std::vector<int64_t> q_offsets = layout.offsets();
  if (pool_q) {
    q = pool(densify(p.q, 1, grid_of), *pool_q, *norm_q, B, g);  // [H, B * L_q, d]
    if (q_stride == 1) {
      q = at_tokens(q, 1, grid_of);  // [H, N, d]
    } else {
      q_offsets = output_layout(layout).offsets();
    }
  }
  // Keys and values: every pooled cell of the clip, or the kept tokens when pooling is skipped.
  Tensor k = p.k, v = p.v;
  std::vector<int64_t> kv_offsets = layout.offsets();
  if (pool_k) {
    k = pool(densify(p.k, 1, grid_of), *pool_k, *norm_k, B, g);
    v = pool(densify(p.v, 1, grid_of), *pool_v, *norm_v, B, g);
    const Size3 out = pool_k->output_size(g);
    const int64_t cells = out[0] * out[1] * out[2];
    for (int64_t b = 0; b <= B; ++b) kv_offsets[b] = b * cells;
  }

  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  Tensor o = clipwise_attention(q, k, v, q_offsets, kv_offsets, kernel_, scale);  // [H, N_q, d]
  if (residual_pooling) o = o + q;  // MViT v2's residual pooling: x = attn @ v + q (q pooled, not scaled)
  return proj_drop->forward(proj->forward(merge_heads(o)));
}

Tensor PoolingAttention::skip(const Tensor& x, const TokenLayout& layout) const {
  if (q_stride == 1) return x;
  check_input(x, layout, "skip");
  // MViT's pool_skip: MaxPool3d(kernel (1, s+1, s+1), stride (1, s, s), padding kernel/2) on the grid of x.
  const int64_t B = layout.batch_size(), D = x.size(1), s = q_stride;
  const Grid& g = layout.grid();
  Tensor dense = densify(x, 0, run_expansion(layout, "pooling attention skip"));  // [B*T'H'W', D]
  Tensor grid = permute(reshape(dense, {B, g.t, g.h, g.w, D}), {0, 4, 1, 2, 3});   // [B, D, T', H', W']
  Tensor pooled = max_pool3d(grid, {1, s + 1, s + 1}, {1, s, s}, {0, (s + 1) / 2, (s + 1) / 2});
  const int64_t cells = pooled.size(2) * pooled.size(3) * pooled.size(4);
  return reshape(permute(pooled, {0, 2, 3, 4, 1}), {B * cells, D});  // clip after clip, raster order
}

TokenLayout PoolingAttention::output_layout(const TokenLayout& layout) const {
  if (q_stride == 1) return layout;
  const Size3 out = pool_q->output_size(layout.grid());  // T' x ceil(H'/s) x ceil(W'/s)
  return TokenLayout::dense(layout.batch_size(), Grid{out[0], out[1], out[2]});
}

Tensor clipwise_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& q_offsets,
                          const std::vector<int64_t>& kv_offsets, const AttentionKernel& kernel, double scale) {
  if (q_offsets.size() != kv_offsets.size() || q.size(1) != q_offsets.back() || k.size(1) != kv_offsets.back() ||
      v.shape() != k.shape()) {
    throw std::invalid_argument("clipwise_attention: q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) +
                                ", v " + shape_str(v.shape()) + " do not match the clips' query and key counts");
  }
  if (q_offsets == kv_offsets) {  // as many keys as queries in every clip: the packed kernels apply
    std::vector<int64_t> counts;
    for (size_t b = 0; b + 1 < q_offsets.size(); ++b) counts.push_back(q_offsets[b + 1] - q_offsets[b]);
    return kernel(q, k, v, TokenLayout::from_counts(counts), scale);
  }
  // Cross-attention (pooled keys): per clip, [H, nq, d] x [H, d, nk] -> softmax -> x [H, nk, d].
  std::vector<Tensor> clips;
  for (size_t b = 0; b + 1 < q_offsets.size(); ++b) {
    const int64_t nq = q_offsets[b + 1] - q_offsets[b], nk = kv_offsets[b + 1] - kv_offsets[b];
    if (nq == 0) continue;
    Tensor qb = narrow(q, 1, q_offsets[b], nq) * scale;
    Tensor kb = narrow(k, 1, kv_offsets[b], nk), vb = narrow(v, 1, kv_offsets[b], nk);
    clips.push_back(matmul(softmax(matmul(qb, transpose(kb, 1, 2)), -1), vb));  // [H, nq, d]
  }
  if (clips.empty()) return ops::zeros({q.size(0), 0, q.size(2)}, q.dtype(), q.device());
  return clips.size() == 1 ? clips[0] : concat(clips, 1);
}

std::shared_ptr<AttentionLayer> make_pooling_attention(const AttentionConfig& c) {
  auto whole = [&](const char* name, double fallback) {
    const double v = c.option(name, fallback);
    if (v != std::floor(v)) {
      throw std::invalid_argument(std::string("pooling attention: option ") + name + " = " + std::to_string(v) +
                                  " must be a whole number");
    }
    return static_cast<int64_t>(v);
  };
  const int64_t kernel = whole("kernel", 3), q_stride = whole("q_stride", 1), kv_stride = whole("kv_stride", 2);
  const int64_t residual = whole("residual_pooling", 1);
  if (residual != 0 && residual != 1) {
    throw std::invalid_argument("pooling attention: option residual_pooling = " + std::to_string(residual) +
                                " must be 0 or 1");
  }
  return std::make_shared<PoolingAttention>(c.dim, c.heads, c.qkv_bias, c.kernel, c.proj_drop, kernel, q_stride,
                                            kv_stride, residual == 1);
}

}  // namespace glance::nn
