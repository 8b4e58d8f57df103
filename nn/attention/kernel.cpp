#include "nn/attention/kernel.h"

#include <stdexcept>

#include "autograd/functions.h"
#include "autograd/node.h"

namespace glance::nn {

namespace {
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout) {
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != layout.total_tokens()) {
    throw std::invalid_argument("attention: expected q, k, v of one shape [H, " + std::to_string(layout.total_tokens()) +
                                ", d], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                                shape_str(v.shape()));
  }
}
}  // namespace

namespace {
// Rows [begin, begin + n) of x [H, N, d]: one clip's tokens, a view.
Tensor clip_of(const Tensor& x, int64_t begin, int64_t n) { return ops::narrow(x, 1, begin, n); }
Tensor t_last(const Tensor& x) { return ops::transpose(x, -2, -1); }
}  // namespace

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  // Forward, clip after clip: S = q k^T * scale, P = softmax(S), out = P v. P is kept for the backward pass:
  // this is the "materialise the scores" rung, O(H L^2) memory per clip.
  const std::vector<int64_t> offsets = layout.offsets();
  // The scale goes on q once ([H, N, d]) rather than on every clip's scores ([H, L, L]).
  const Tensor qs = ops::binary(BinaryOp::Mul, q, scale);
  // The clips tile [0, N) exactly, so every row of out (and of dq, dk, dv below) gets written: no zero fill.
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  std::vector<Tensor> probs(layout.batch_size());  // P of clip b: [H, L, L] (undefined for an empty clip)
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t begin = offsets[b], n = offsets[b + 1] - begin;
    if (n == 0) continue;
    const Tensor qb = clip_of(qs, begin, n), kb = clip_of(k, begin, n), vb = clip_of(v, begin, n);  // [H, L, d]
    probs[b] = ops::softmax(ops::matmul(qb, t_last(kb)), -1);                                      // [H, L, L]
    ops::copy_(clip_of(out, begin, n), ops::matmul(probs[b], vb));                                 // [H, L, d]
  }
  // Backward, clip after clip, with the saved P:
  //   dV = P^T dO      dP = dO V^T      dS = P * (dP - rowsum(dP * P))      dQ = dS K * scale   dK = dS^T Q * scale
  autograd::record("reference_attention", {q, k, v}, out,
                   [qs, k, v, offsets, probs, scale](const Tensor& g) -> std::vector<Tensor> {
    Tensor dq = Tensor::empty(qs.shape(), qs.dtype(), qs.device()), dk = Tensor::empty(k.shape(), k.dtype(), k.device()),
           dv = Tensor::empty(v.shape(), v.dtype(), v.device());
    for (size_t b = 0; b < probs.size(); ++b) {
      const int64_t begin = offsets[b], n = offsets[b + 1] - begin;
      if (n == 0) continue;
      const Tensor qb = clip_of(qs, begin, n), kb = clip_of(k, begin, n), vb = clip_of(v, begin, n);
      const Tensor gb = clip_of(g, begin, n);
      const Tensor& p = probs[b];
      const Tensor dp = ops::matmul(gb, t_last(vb));      // dL/dP      [H, L, L]
      const Tensor ds = ops::softmax_backward(p, dp, -1);  // dL/dscores = P * (dP - rowsum(dP * P))
      ops::copy_(clip_of(dv, begin, n), ops::matmul(t_last(p), gb));
      ops::copy_(clip_of(dq, begin, n), ops::matmul(ds, kb));          // times scale, once, below
      ops::copy_(clip_of(dk, begin, n), ops::matmul(t_last(ds), qb));  // qb holds the scale
    }
    return {ops::binary(BinaryOp::Mul, dq, scale), dk, dv};
  });
  return out;
}

Tensor backend_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const TokenLayout& layout,
                         const AttentionOptions& options) {
  check_qkv(q_in, k_in, v_in, layout);
  Backend& backend = backend_for(q_in.device());
  const Tensor q = ops::contiguous(q_in), k = ops::contiguous(k_in), v = ops::contiguous(v_in);
  // The offsets on the device, for kernels that read them there (uploaded once per layout and device).
  const AttentionClips clips{layout.offsets(), q.device().is_cpu() ? Tensor() : layout.cu_seqlens_on(q.device())};
  AttentionOptions opts = options;
  opts.backward_follows =
      autograd::grad_enabled() && (q_in.requires_grad() || k_in.requires_grad() || v_in.requires_grad());
  AttentionForwardResult forward = backend.attention_forward(q.detach(), k.detach(), v.detach(), clips, opts);
  Tensor out = forward.out;
  forward.out = out.detach();  // the node keeps its output without its history (no cycle)
  // Backward: the device's own rule, from q, k, v and what its forward returned (out, and whatever else it
  // keeps: the rows' log-sum-exp, or the probabilities).
  autograd::record("attention", {q_in, k_in, v_in}, out,
                   [&backend, q = q.detach(), k = k.detach(), v = v.detach(), forward, clips,
                    opts](const Tensor& g) -> std::vector<Tensor> {
                     const AttentionGradients d = backend.attention_backward(g, q, k, v, forward, clips, opts);
                     return {d.dq, d.dk, d.dv};
                   });
  return out;
}

namespace {

AttentionKernel on_device_type(const std::string& name, bool cpu, const AttentionOptions& options) {
  return [name, cpu, options](const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                              double scale) {
    if (q.device().is_cpu() != cpu) {
      throw std::invalid_argument(
          "attention kernel \"" + name + "\": q is on " + q.device().str() +
          (cpu ? "; this is the CPU kernel: use \"fused\" on a CUDA device (or \"device\", the device's own)"
               : "; this kernel runs on a CUDA device: move q, k, v there (ops::to_device), or use the \"tiled\" "
                 "kernel on the CPU"));
    }
    AttentionOptions o = options;
    o.scale = scale;
    return backend_attention(q, k, v, layout, o);
  };
}

}  // namespace

AttentionKernel attention_kernel(const std::string& name) {
  using P = AttentionPrecision;
  if (name == "reference") return reference_attention;
  if (name == "device") {
    return [](const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
      return backend_attention(q, k, v, layout, AttentionOptions{.scale = scale});
    };
  }
  if (name == "tiled") return on_device_type(name, /*cpu=*/true, {});
  if (name == "fused") return on_device_type(name, false, {});
  if (name == "fused_deterministic") return on_device_type(name, false, {.deterministic = true});
  if (name == "fused_bf16") return on_device_type(name, false, {.precision = P::BFloat16});
  if (name == "fused_fp16") return on_device_type(name, false, {.precision = P::Float16});
  std::string known;
  for (const std::string& n : attention_kernel_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("attention_kernel: unknown kernel '" + name + "' (known: " + known + ")");
}

std::vector<std::string> attention_kernel_names() {
  return {"device", "reference", "tiled", "fused", "fused_deterministic", "fused_bf16", "fused_fp16"};
}

}  // namespace glance::nn
