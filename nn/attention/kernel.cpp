#include "nn/attention/kernel.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "nn/attention/tiled_cpu.h"

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

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  // Forward, clip by clip: S = q k^T * scale, P = softmax(S), out = P v. P is kept for the backward
  // pass: this is the "materialise the scores" rung, O(H L^2) memory per clip.
  std::vector<int64_t> offsets = layout.offsets();
  // The scale goes on q once ([H, N, d]) rather than on every clip's scores ([H, n, n]).
  const Tensor qs = ops::binary(BinaryOp::Mul, q, scale);
  // The clips tile [0, N) exactly, so every row of out (and of dq, dk, dv below) gets written: no zero fill.
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  std::vector<Tensor> probs(offsets.size() - 1);
  for (size_t b = 0; b + 1 < offsets.size(); ++b) {
    int64_t start = offsets[b], n = offsets[b + 1] - offsets[b];
    if (n == 0) continue;
    Tensor qb = ops::narrow(qs, 1, start, n), kb = ops::narrow(k, 1, start, n), vb = ops::narrow(v, 1, start, n);
    Tensor scores = ops::matmul(qb, ops::transpose(kb, 1, 2));  // [H, n, n], already scaled through q
    probs[b] = ops::softmax(scores, -1);
    ops::copy_(ops::narrow(out, 1, start, n), ops::matmul(probs[b], vb));                          // [H, n, d]
  }
  // Backward, clip by clip, with the saved P:
  //   dV = P^T dO      dP = dO V^T      dS = P * (dP - rowsum(dP * P))      dQ = dS K * scale   dK = dS^T Q * scale
  autograd::record("reference_attention", {q, k, v}, out,
                   [qs, k, v, offsets, probs, scale](const Tensor& g) -> std::vector<Tensor> {
    Tensor dq = Tensor::empty(qs.shape(), qs.dtype(), qs.device()), dk = Tensor::empty(k.shape(), k.dtype(), k.device()),
           dv = Tensor::empty(v.shape(), v.dtype(), v.device());
    for (size_t b = 0; b + 1 < offsets.size(); ++b) {
      int64_t start = offsets[b], n = offsets[b + 1] - offsets[b];
      if (n == 0) continue;
      Tensor qb = ops::narrow(qs, 1, start, n), kb = ops::narrow(k, 1, start, n), vb = ops::narrow(v, 1, start, n);
      Tensor gb = ops::narrow(g, 1, start, n);
      const Tensor& p = probs[b];
      Tensor dp = ops::matmul(gb, ops::transpose(vb, 1, 2));     // dL/dP      [H, n, n]
      Tensor ds = ops::softmax_backward(p, dp, -1);               // dL/dscores = P * (dP - rowsum(dP * P))
      ops::copy_(ops::narrow(dv, 1, start, n), ops::matmul(ops::transpose(p, 1, 2), gb));
      ops::copy_(ops::narrow(dq, 1, start, n), ops::matmul(ds, kb));  // times scale, once, below
      ops::copy_(ops::narrow(dk, 1, start, n), ops::matmul(ops::transpose(ds, 1, 2), qb));  // qb holds the scale
    }
    return {ops::binary(BinaryOp::Mul, dq, scale), dk, dv};
  });
  return out;
}

namespace {
std::mutex g_mutex;
std::map<std::string, AttentionKernel>& registry() {
  auto tiled = [](const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
    return tiled_attention(q, k, v, layout, scale);  // with the default block sizes
  };
  static std::map<std::string, AttentionKernel> kernels{{"reference", reference_attention}, {"tiled", tiled}};
  return kernels;
}
}  // namespace

void register_attention_kernel(const std::string& name, AttentionKernel kernel) {
  std::lock_guard<std::mutex> lock(g_mutex);
  registry()[name] = std::move(kernel);
}

AttentionKernel attention_kernel(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (auto& [n, _] : registry()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("attention_kernel: unknown kernel '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> attention_kernel_names() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<std::string> names;
  for (auto& [n, _] : registry()) names.push_back(n);
  return names;
}

}  // namespace glance::nn
