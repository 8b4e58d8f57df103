#include "nn/attention/nystrom.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "nn/attention/heads.h"
#include "nn/init.h"

namespace glance::nn {

std::vector<int64_t> landmark_segment_sizes(int64_t n, int64_t m) {
  if (m < 1 || m > n) {
    throw std::invalid_argument("landmark_segment_sizes: need 1 <= m <= n, got m = " + std::to_string(m) +
                                ", n = " + std::to_string(n));
  }
  // The first (n/m + 1) * m - n segments are one token shorter than the rest (none when m divides n).
  const int64_t short_len = n / m, short_count = (short_len + 1) * m - n;
  std::vector<int64_t> sizes(static_cast<size_t>(m), short_len + 1);
  for (int64_t s = 0; s < short_count; ++s) sizes[s] = short_len;
  return sizes;
}

Tensor iterative_pseudo_inverse(const Tensor& a, int64_t iterations) {
  if (a.dim() < 2 || a.size(-1) != a.size(-2)) {
    throw std::invalid_argument("iterative_pseudo_inverse: expected square matrices [..., m, m], got " +
                                shape_str(a.shape()));
  }
  if (iterations < 0) throw std::invalid_argument("iterative_pseudo_inverse: iterations must be >= 0");
  const int64_t m = a.size(-1);
  const Tensor eye = ops::to_device(ops::eye(m, a.dtype()), a.device());  // [m, m], broadcasts over the batch
  // Z0 = A^T / max_j sum_i A_ij: the largest column sum of each matrix on its own ([..., 1, 1]).
  const Tensor largest_column_sum = unsqueeze(max(sum(a, {-2}), {-1}, /*keepdim=*/true), -1);
  Tensor z = transpose(a, -1, -2) / largest_column_sum;
  for (int64_t it = 0; it < iterations; ++it) {
    const Tensor az = matmul(a, z);  // -> I as Z -> A^+ (for invertible A)
    z = matmul(z * 0.25, eye * 13.0 - matmul(az, eye * 15.0 - matmul(az, eye * 7.0 - az)));
  }
  return z;
}

Tensor depthwise_sequence_conv(const Tensor& v, const Tensor& weight, const TokenLayout& layout) {
  const int64_t H = v.size(0), N = v.size(1), d = v.size(2);
  if (weight.dim() != 4 || weight.size(0) != H || weight.size(1) != 1 || weight.size(3) != 1) {
    throw std::invalid_argument("depthwise_sequence_conv: expected weight [" + std::to_string(H) + ", 1, k, 1], got " +
                                shape_str(weight.shape()));
  }
  const int64_t taps = weight.size(2), half = taps / 2;
  const Tensor taps_of_head = reshape(weight, {H, taps});
  // v with k/2 zero rows on each side, so that rows t .. t + N - 1 of `padded` are tokens i + t - k/2.
  const Tensor edge = zeros({H, half, d}, v.dtype(), v.device());
  const Tensor padded = concat({edge, v, edge}, 1);  // [H, N + 2 (k/2), d]
  Tensor out;
  for (int64_t t = 0; t < taps; ++t) {
    // inside[i] = 1 when tap t of output token i reads a token of i's own clip, else 0: the per-clip
    // zero padding, as a mask (a shift by t - k/2 would otherwise read the neighbouring clip).
    std::vector<double> inside(static_cast<size_t>(N), 0.0);
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t begin = layout.clip_begin(b), end = begin + layout.clip_tokens(b);
      for (int64_t i = begin; i < end; ++i) inside[i] = (i + t - half >= begin && i + t - half < end);
    }
    const Tensor mask = ops::to_device(ops::to_dtype(ops::from_vector(inside, {1, N, 1}), v.dtype()), v.device());
    const Tensor coefficient = mask * reshape(narrow(taps_of_head, 1, t, 1), {H, 1, 1});  // [H, N, 1]
    const Tensor term = narrow(padded, 1, t, N) * coefficient;                            // [H, N, d]
    out = t == 0 ? term : out + term;
  }
  return out;
}

Tensor nystrom_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                         const NystromOptions& options, const AttentionKernel& kernel) {
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != layout.total_tokens()) {
    throw std::invalid_argument("nystrom_attention: expected q, k, v of one shape [H, " +
                                std::to_string(layout.total_tokens()) + ", d], got " + shape_str(q.shape()) + ", " +
                                shape_str(k.shape()) + ", " + shape_str(v.shape()));
  }
  if (options.landmarks < 1) throw std::invalid_argument("nystrom_attention: landmarks must be >= 1");
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2), m = options.landmarks;
  // Q and K scaled by d^-1/4 each, as the official code does (their product carries 1/sqrt(d)).
  const double quarter = std::pow(static_cast<double>(d), -0.25);
  const Tensor qs = q * quarter, ks = k * quarter;

  // Two kinds of clips. Those of n <= m tokens have m = n: like the official special case, exact softmax
  // attention, all through the kernel in one call on a layout of just those clips. The others (n > m)
  // all have exactly m landmarks, so they stack into one padded batch [H, C, n_max, d] (C clips) and
  // each step below is one batched op for all of them.
  std::vector<int64_t> exact_rows, exact_counts, clips;
  int64_t n_max = 0;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t n = layout.clip_tokens(b);
    if (n == 0) continue;
    if (n > m) {
      clips.push_back(b), n_max = std::max(n_max, n);
      continue;
    }
    exact_counts.push_back(n);
    for (int64_t i = 0; i < n; ++i) exact_rows.push_back(layout.clip_begin(b) + i);
  }
  const int64_t C = static_cast<int64_t>(clips.size());
  // Where each token's output row is found in concat(Nystrom rows [C * n_max], exact rows).
  std::vector<int64_t> source(static_cast<size_t>(N));
  std::vector<Tensor> results;

  if (C > 0) {
    // Slot c * n_max + u holds token u of clip c, or N (a zero row) past the clip's end.
    std::vector<int64_t> slot_token(static_cast<size_t>(C * n_max), N);
    // Segment means as a matmul: row s of average[c] holds 1/|segment s| on segment s's tokens.
    std::vector<double> average(static_cast<size_t>(C * m * n_max), 0.0);
    // Padded keys get -inf in B's logits, so they take no weight.
    std::vector<double> key_bias(static_cast<size_t>(C * n_max), -std::numeric_limits<double>::infinity());
    for (int64_t c = 0; c < C; ++c) {
      const int64_t begin = layout.clip_begin(clips[c]), n = layout.clip_tokens(clips[c]);
      for (int64_t u = 0; u < n; ++u) {
        slot_token[c * n_max + u] = begin + u, source[begin + u] = c * n_max + u;
        key_bias[c * n_max + u] = 0.0;
      }
      const std::vector<int64_t> sizes = landmark_segment_sizes(n, m);
      for (int64_t s = 0, first = 0; s < m; first += sizes[s], ++s)
        for (int64_t u = first; u < first + sizes[s]; ++u) average[(c * m + s) * n_max + u] = 1.0 / double(sizes[s]);
    }
    auto constant = [&](const std::vector<double>& values, const Shape& shape) {
      return ops::to_device(ops::to_dtype(ops::from_vector(values, shape), q.dtype()), q.device());
    };
    const Tensor slots = ops::from_vector(slot_token), zero_row = zeros({H, 1, d}, q.dtype(), q.device());
    auto padded = [&](const Tensor& x) {  // [H, N, d] -> [H, C, n_max, d]
      return reshape(index_select(concat({x, zero_row}, 1), 1, slots), {H, C, n_max, d});
    };
    const Tensor qp = padded(qs), kp = padded(ks), vp = padded(v);
    const Tensor avg = constant(average, {C, m, n_max});
    const Tensor q_landmarks = matmul(avg, qp), k_landmarks = matmul(avg, kp);  // [H, C, m, d]

    const Tensor f = softmax(matmul(qp, transpose(k_landmarks, -1, -2)), -1);            // [H, C, n, m]
    const Tensor a = softmax(matmul(q_landmarks, transpose(k_landmarks, -1, -2)), -1);  // [H, C, m, m]
    const Tensor b = softmax(matmul(q_landmarks, transpose(kp, -1, -2)) + constant(key_bias, {C, 1, n_max}),
                             -1);                                                        // [H, C, m, n]
    const Tensor z = iterative_pseudo_inverse(a, options.iterations);                   // [H, C, m, m]
    const Tensor x = matmul(matmul(f, z), matmul(b, vp));  // (F Z)(B V): [H, C, n, d]; padded rows unused
    results.push_back(reshape(x, {H, C * n_max, d}));
  }
  if (!exact_rows.empty()) {
    const Tensor rows = ops::from_vector(exact_rows);
    const TokenLayout exact_layout(exact_counts, ops::index_select(layout.t(), 0, rows),
                                   ops::index_select(layout.h(), 0, rows), ops::index_select(layout.w(), 0, rows),
                                   ops::index_select(layout.length(), 0, rows), layout.grid());
    results.push_back(kernel(contiguous(index_select(qs, 1, rows)), contiguous(index_select(ks, 1, rows)),
                             contiguous(index_select(v, 1, rows)), exact_layout, 1.0));  // q, k carry 1/sqrt(d)
    for (size_t r = 0; r < exact_rows.size(); ++r) source[exact_rows[r]] = C * n_max + int64_t(r);
  }
  if (results.empty()) return zeros_like(q);  // no tokens at all
  return index_select(concat(results, 1), 1, ops::from_vector(source));  // back to packed order: [H, N, d]
}

NystromAttention::NystromAttention(int64_t d, int64_t h, bool qkv_bias, NystromOptions opts, int64_t conv_k,
                                   const std::string& kernel, double drop)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), conv_kernel(conv_k), options(opts) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("NystromAttention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  if (opts.landmarks < 1) {
    throw std::invalid_argument("attention 'nystrom': option 'landmarks' must be >= 1, got " +
                                std::to_string(opts.landmarks));
  }
  if (opts.iterations < 0) {
    throw std::invalid_argument("attention 'nystrom': option 'iterations' must be >= 0, got " +
                                std::to_string(opts.iterations));
  }
  if (conv_k < 0 || (conv_k > 0 && conv_k % 2 == 0)) {
    throw std::invalid_argument("attention 'nystrom': option 'conv_kernel' must be odd (or 0 for no conv), got " +
                                std::to_string(conv_k));
  }
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, qkv_bias));
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  if (conv_k > 0) {
    // PyTorch's Conv2d(h, h, (k, 1), groups=h, bias=False): weight [h, 1, k, 1], default init U(+-1/sqrt(k)).
    conv = register_module("conv", std::make_shared<Module>());
    conv_weight = conv->register_parameter("weight", zeros({h, 1, conv_k, 1}));
    init::kaiming_uniform_(conv_weight, std::sqrt(5.0));
  }
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
  set_kernel(kernel);
}

Tensor NystromAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("NystromAttention: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  QKV h = project_qkv(*qkv, x, heads);                                       // each [H, N, d]
  Tensor o = nystrom_attention(h.q, h.k, h.v, layout, options, kernel_);    // [H, N, d]
  if (conv) o = o + depthwise_sequence_conv(h.v, conv_weight, layout);     // the skip on (unscaled) V
  return proj_drop->forward(proj->forward(merge_heads(o)));                  // [N, D]
}

namespace {
// An option that must be a whole number.
int64_t whole_option(const AttentionConfig& c, const std::string& name, double fallback) {
  const double value = c.option(name, fallback);
  if (value != std::floor(value)) {
    throw std::invalid_argument("attention 'nystrom': option '" + name + "' must be a whole number, got " +
                                std::to_string(value));
  }
  return static_cast<int64_t>(value);
}
}  // namespace

std::shared_ptr<AttentionLayer> make_nystrom_attention(const AttentionConfig& c) {
  NystromOptions options;
  options.landmarks = whole_option(c, "landmarks", 16);
  options.iterations = whole_option(c, "iterations", 6);
  const int64_t conv_kernel = whole_option(c, "conv_kernel", 33);
  return std::make_shared<NystromAttention>(c.dim, c.heads, c.qkv_bias, options, conv_kernel, c.kernel, c.proj_drop);
}

}  // namespace glance::nn
