// The default attention of the Backend (tensor/backend.h), composed from primitives: clip after clip, the
// clip's scores are materialised ([H, L, L]), softmaxed through their log-sum-exp and multiplied by v. The
// backward recomputes the probabilities from the saved log-sum-exp rather than keeping them:
//
//   forward:  S = q k^T * scale   lse = logsumexp_rows(S)   P = exp(S - lse)   out = P v
//   backward: P as above   dV = P^T dO   dP = dO V^T   dS = P * (dP - rowsum(dP * P))
//             dQ = dS K * scale   dK = dS^T Q * scale
//
// The devices override it with their own kernels (tensor/cpu/attention.cpp, cuda/attention/); this is what a
// new device gets until it has one.
#include <stdexcept>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace glance {

namespace {

void require_full_precision(const AttentionOptions& options) {
  if (options.precision != AttentionPrecision::Full) {
    throw std::invalid_argument(
        "attention: this device computes attention in the inputs' dtype only (16-bit attention needs a device "
        "with tensor-core kernels)");
  }
}

// Rows [begin, begin + n) of x [H, N, ...] along the token axis.
Tensor clip_of(const Tensor& x, int64_t begin, int64_t n) { return ops::narrow(x, 1, begin, n); }

// S = q k^T * scale of one clip: [H, L, d] x [H, L, d] -> [H, L, L].
Tensor scores(const Tensor& q, const Tensor& k, double scale) {
  return ops::matmul(ops::binary(BinaryOp::Mul, q, scale), ops::transpose(k, -2, -1));
}

// P = exp(S - lse): the softmax of S from its rows' log-sum-exp lse [H, L, 1].
Tensor probabilities(const Tensor& s, const Tensor& lse) {
  return ops::unary(UnaryOp::Exp, ops::binary(BinaryOp::Sub, s, lse));
}

}  // namespace

AttentionForwardResult Backend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const AttentionClips& clips, const AttentionOptions& options) {
  require_full_precision(options);
  AttentionForwardResult r;
  r.out = ops::empty(q.shape(), q.dtype(), q.device());  // the clips tile [0, N): every row is written
  const Tensor lse_all = ops::empty({q.size(0), q.size(1)}, q.dtype(), q.device());  // [H, N]
  r.saved = {lse_all};
  for (size_t b = 0; b + 1 < clips.offsets.size(); ++b) {
    const int64_t begin = clips.offsets[b], n = clips.offsets[b + 1] - begin;
    if (n == 0) continue;
    const Tensor qb = clip_of(q, begin, n), kb = clip_of(k, begin, n), vb = clip_of(v, begin, n);  // [H, L, d]
    const Tensor s = scores(qb, kb, options.scale);
    const Tensor lse = ops::logsumexp(s, {2}, /*keepdim=*/true);  // [H, L, 1]
    const Tensor p = probabilities(s, lse);
    ops::copy_(clip_of(r.out, begin, n), ops::matmul(p, vb));
    ops::copy_(clip_of(lse_all, begin, n), ops::squeeze(lse, 2));
  }
  return r;
}

AttentionGradients Backend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                               const AttentionForwardResult& forward, const AttentionClips& clips,
                                               const AttentionOptions& options) {
  require_full_precision(options);
  AttentionGradients g;
  g.dq = ops::empty(q.shape(), q.dtype(), q.device());
  g.dk = ops::empty(q.shape(), q.dtype(), q.device());
  g.dv = ops::empty(q.shape(), q.dtype(), q.device());
  for (size_t b = 0; b + 1 < clips.offsets.size(); ++b) {
    const int64_t begin = clips.offsets[b], n = clips.offsets[b + 1] - begin;
    if (n == 0) continue;
    const Tensor qb = clip_of(q, begin, n), kb = clip_of(k, begin, n), vb = clip_of(v, begin, n);
    const Tensor gb = clip_of(dout, begin, n);
    const Tensor lse = ops::unsqueeze(clip_of(forward.saved.at(0), begin, n), 2);  // [H, L, 1]
    const Tensor p = probabilities(scores(qb, kb, options.scale), lse);    // [H, L, L], recomputed
    const Tensor dp = ops::matmul(gb, ops::transpose(vb, -2, -1));
    const Tensor ds = ops::softmax_backward(p, dp, -1);  // P * (dP - rowsum(dP * P))
    ops::copy_(clip_of(g.dv, begin, n), ops::matmul(ops::transpose(p, -2, -1), gb));
    ops::copy_(clip_of(g.dq, begin, n), ops::binary(BinaryOp::Mul, ops::matmul(ds, kb), options.scale));
    ops::copy_(clip_of(g.dk, begin, n),
               ops::binary(BinaryOp::Mul, ops::matmul(ops::transpose(ds, -2, -1), qb), options.scale));
  }
  return g;
}

}  // namespace glance
