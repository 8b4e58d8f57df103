#include "nn/attention/kernel.h"

#include <omp.h>

#include <exception>
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

// Calls body(r) for every run. On the CPU the runs are spread over the threads: an RLT pack has one run
// per clip length, each a few products too small to be worth threading inside (measured on 2026-12-06:
// the tiny demo model's RLT step about 11% faster). A run with more than 1/(2 x threads) of the work, such
// as the one long clip of a ragged pack, would leave the other threads idle that way, so such runs go
// first, one after the other, each threaded inside its ops. Inside the parallel loop the ops run on their
// own thread (nested parallelism is off). Each run writes its own rows and every op gives the same bits on
// any number of threads, so the result does not depend on the split. On other devices one run after the
// other: a device's kernels are issued in order by the one calling thread. An exception may not leave an
// OpenMP region (the program would terminate), so the first one is carried out and rethrown. The body
// may call only ops:: (tensor) functions, never differentiable glance:: ones: a worker thread has its own
// autograd state (grad mode is thread_local and on) and would record nodes, even inside a backward pass.
template <class Body>
void for_each_run(const std::vector<ClipRun>& runs, const Device& device, const Body& body) {
  const int64_t threads = omp_get_max_threads();
  if (!device.is_cpu() || runs.size() < 2 || threads < 2) {
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

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  // Forward, per run of equal-length clips: S = q k^T * scale, P = softmax(S), out = P v. P is kept for
  // the backward pass: this is the "materialise the scores" rung, O(H L^2) memory per clip.
  const std::vector<ClipRun> runs = equal_length_runs(layout.offsets());
  // The scale goes on q once ([H, N, d]) rather than on every clip's scores ([H, n, n]).
  const Tensor qs = ops::binary(BinaryOp::Mul, q, scale);
  // The clips tile [0, N) exactly, so every row of out (and of dq, dk, dv below) gets written: no zero fill.
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  std::vector<Tensor> probs(runs.size());
  for_each_run(runs, q.device(), [&](size_t r) {
    Tensor qb = run_view(qs, runs[r]), kb = run_view(k, runs[r]), vb = run_view(v, runs[r]);  // [H, c, n, d]
    probs[r] = ops::softmax(ops::matmul(qb, t_last(kb)), -1);                                 // [H, c, n, n]
    ops::copy_(run_view(out, runs[r]), ops::matmul(probs[r], vb));                            // [H, c, n, d]
  });
  // Backward, per run, with the saved P:
  //   dV = P^T dO      dP = dO V^T      dS = P * (dP - rowsum(dP * P))      dQ = dS K * scale   dK = dS^T Q * scale
  autograd::record("reference_attention", {q, k, v}, out,
                   [qs, k, v, runs, probs, scale](const Tensor& g) -> std::vector<Tensor> {
    Tensor dq = Tensor::empty(qs.shape(), qs.dtype(), qs.device()), dk = Tensor::empty(k.shape(), k.dtype(), k.device()),
           dv = Tensor::empty(v.shape(), v.dtype(), v.device());
    const Tensor gc = ops::contiguous(g);
    for_each_run(runs, qs.device(), [&](size_t r) {
      Tensor qb = run_view(qs, runs[r]), kb = run_view(k, runs[r]), vb = run_view(v, runs[r]);
      Tensor gb = run_view(gc, runs[r]);
      const Tensor& p = probs[r];
      Tensor dp = ops::matmul(gb, t_last(vb));        // dL/dP      [H, c, n, n]
      Tensor ds = ops::softmax_backward(p, dp, -1);    // dL/dscores = P * (dP - rowsum(dP * P))
      ops::copy_(run_view(dv, runs[r]), ops::matmul(t_last(p), gb));
      ops::copy_(run_view(dq, runs[r]), ops::matmul(ds, kb));          // times scale, once, below
      ops::copy_(run_view(dk, runs[r]), ops::matmul(t_last(ds), qb));  // qb holds the scale
    });
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
