// The CPU backend's attention for short clips: the scores materialised, as in the plain reference
// (nn::reference_attention), but with consecutive clips of equal length batched into one product and the
// batches spread over the threads. Below about a thousand tokens per clip this beats the tiled kernel
// (docs/09-fused-attention.md: the scores still fit in cache, and the tiled kernel's block bookkeeping costs
// more than it saves).
#include <omp.h>

#include <exception>
#include <mutex>

#include "tensor/cpu/attention.h"
#include "tensor/ops.h"

namespace glance::cpu {

namespace {

// Consecutive clips of equal length go through the products together: a pack of B clips of n tokens
// (a dense batch, or the equal-sized groups of grouped attention) is one batched product over
// [H, B, n, d] instead of B small ones, which would cost more in call overhead than in arithmetic.
struct ClipRun {
  int64_t start, count, n;  // rows [start, start + count * n): `count` clips of n tokens
};

std::vector<ClipRun> equal_length_runs(const std::vector<int64_t>& offsets) {
  std::vector<ClipRun> runs;
  for (size_t b = 0; b + 1 < offsets.size(); ++b) {
    const int64_t n = offsets[b + 1] - offsets[b];
    if (n == 0) continue;
    if (!runs.empty() && runs.back().n == n && runs.back().start + runs.back().count * n == offsets[b]) {
      ++runs.back().count;
    } else {
      runs.push_back({offsets[b], 1, n});
    }
  }
  return runs;
}

// Rows of one run as [H, count, n, d] (a view of the [H, N, d] tensor).
Tensor run_view(const Tensor& x, const ClipRun& r) {
  return ops::view(ops::narrow(x, 1, r.start, r.count * r.n), {x.size(0), r.count, r.n, x.size(2)});
}

Tensor t_last(const Tensor& x) { return ops::transpose(x, -2, -1); }

// Calls body(r) for every run, the runs spread over the threads: an RLT pack has one run per clip length,
// each a few products too small to be worth threading inside (measured: the tiny demo model's RLT step about
// 11% faster). A run with more than 1/(2 x threads) of the work would leave the other threads idle that way,
// so such runs go first, one after the other, each threaded inside its ops. Inside the parallel loop the ops
// run on their own thread (nested parallelism is off). Each run writes its own rows and every op gives the
// same bits on any number of threads, so the result does not depend on the split. An exception may not leave
// an OpenMP region (the program would terminate), so the first one is carried out and rethrown. The body may
// call only ops:: (tensor) functions, never differentiable glance:: ones: a worker thread has its own
// autograd state (grad mode is thread_local and on) and would record nodes.
template <class Body>
void for_each_run(const std::vector<ClipRun>& runs, const Body& body) {
  const int64_t threads = omp_get_max_threads();
  if (runs.size() < 2 || threads < 2) {
    for (size_t r = 0; r < runs.size(); ++r) body(r);
    return;
  }
  // A run's products cost count x n^2 multiply-adds times a factor (heads x d) common to all runs.
  auto work = [&](size_t r) { return runs[r].count * runs[r].n * runs[r].n; };
  int64_t total = 0;
  for (size_t r = 0; r < runs.size(); ++r) total += work(r);
  std::vector<size_t> shared;  // the runs small enough to share out
  for (size_t r = 0; r < runs.size(); ++r) {
    if (work(r) * 2 * threads > total) {
      body(r);
    } else {
      shared.push_back(r);
    }
  }
  if (shared.size() < 2) {  // nothing to share out: no need to wake the threads
    for (size_t r : shared) body(r);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < shared.size(); ++i) {
    try {
      body(shared[i]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

AttentionForwardResult materialised_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                      const std::vector<int64_t>& offsets, double scale) {
  // Per run of equal-length clips: S = q k^T * scale, P = softmax(S), out = P v. P is saved for the backward.
  const std::vector<ClipRun> runs = equal_length_runs(offsets);
  // The scale goes on q once ([H, N, d]) rather than on every clip's scores ([H, n, n]).
  const Tensor qs = ops::binary(BinaryOp::Mul, q, scale);
  // The clips tile [0, N) exactly, so every row of out (and of dq, dk, dv below) gets written: no zero fill.
  AttentionForwardResult r;
  r.out = Tensor::empty(q.shape(), q.dtype(), q.device());
  r.saved.resize(runs.size());  // P of each run, [H, count, n, n]
  for_each_run(runs, [&](size_t i) {
    const Tensor qb = run_view(qs, runs[i]), kb = run_view(k, runs[i]), vb = run_view(v, runs[i]);  // [H, c, n, d]
    r.saved[i] = ops::softmax(ops::matmul(qb, t_last(kb)), -1);                                    // [H, c, n, n]
    ops::copy_(run_view(r.out, runs[i]), ops::matmul(r.saved[i], vb));                            // [H, c, n, d]
  });
  return r;
}

AttentionGradients materialised_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                   const Tensor& v, const AttentionForwardResult& forward,
                                                   const std::vector<int64_t>& offsets, double scale) {
  // Per run, with the saved P:
  //   dV = P^T dO      dP = dO V^T      dS = P * (dP - rowsum(dP * P))      dQ = dS K * scale   dK = dS^T Q * scale
  const std::vector<ClipRun> runs = equal_length_runs(offsets);
  const Tensor qs = ops::binary(BinaryOp::Mul, q, scale);
  AttentionGradients g;
  g.dq = Tensor::empty(q.shape(), q.dtype(), q.device());
  g.dk = Tensor::empty(k.shape(), k.dtype(), k.device());
  g.dv = Tensor::empty(v.shape(), v.dtype(), v.device());
  const Tensor gc = ops::contiguous(dout);
  for_each_run(runs, [&](size_t i) {
    const Tensor qb = run_view(qs, runs[i]), kb = run_view(k, runs[i]), vb = run_view(v, runs[i]);
    const Tensor gb = run_view(gc, runs[i]);
    const Tensor& p = forward.saved.at(i);
    const Tensor dp = ops::matmul(gb, t_last(vb));      // dL/dP      [H, c, n, n]
    const Tensor ds = ops::softmax_backward(p, dp, -1);  // dL/dscores = P * (dP - rowsum(dP * P))
    ops::copy_(run_view(g.dv, runs[i]), ops::matmul(t_last(p), gb));
    ops::copy_(run_view(g.dq, runs[i]), ops::matmul(ds, kb));          // times scale, once, below
    ops::copy_(run_view(g.dk, runs[i]), ops::matmul(t_last(ds), qb));  // qb holds the scale
  });
  g.dq = ops::binary(BinaryOp::Mul, g.dq, scale);
  return g;
}

}  // namespace glance::cpu
