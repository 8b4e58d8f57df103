// The tiled (FlashAttention-style) attention kernel of the CPU backend: the algorithm is in attention.h.
#include "tensor/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "tensor/cpu/fast_math.h"
#include "tensor/cpu/gemm.h"
#include "tensor/ops.h"

namespace glance::cpu {

namespace {

// C[M, N] = alpha * op(A) op(B) + beta * C, row-major with leading dimensions (tensor/cpu/gemm.h).
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline float exp_of(float x) { return fast_exp(x); }
inline double exp_of(double x) { return std::exp(x); }

// Row helpers written with 16 independent lanes, so the compiler turns them into SIMD code (a plain
// running max or sum is a dependency chain it may not reorder).
constexpr int kLanes = 16;

template <typename T>
T row_max(const T* x, int64_t n, T start) {
  T lane[kLanes];
  std::fill(lane, lane + kLanes, start);
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int k = 0; k < kLanes; ++k) lane[k] = x[c + k] > lane[k] ? x[c + k] : lane[k];
  }
  for (; c < n; ++c) lane[0] = x[c] > lane[0] ? x[c] : lane[0];
  T m = lane[0];
  for (int k = 1; k < kLanes; ++k) m = lane[k] > m ? lane[k] : m;
  return m;
}

template <typename T>
T row_sum(const T* x, int64_t n) {
  T lane[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int k = 0; k < kLanes; ++k) lane[k] += x[c + k];
  }
  for (; c < n; ++c) lane[0] += x[c];
  T s = 0;
  for (int k = 0; k < kLanes; ++k) s += lane[k];
  return s;
}

template <typename T>
T row_dot(const T* a, const T* b, int64_t n) {
  T lane[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int k = 0; k < kLanes; ++k) lane[k] += a[c + k] * b[c + k];
  }
  for (; c < n; ++c) lane[0] += a[c] * b[c];
  T s = 0;
  for (int k = 0; k < kLanes; ++k) s += lane[k];
  return s;
}

// A per-thread scratch buffer, grown as needed and kept: a task's score blocks (hundreds of KB) would otherwise
// be a fresh allocation each, which the C library serves with mmap and the kernel with page faults.
template <typename T>
T* scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[3];
  if (buffers[slot].size() < n) buffers[slot].resize(n);
  return buffers[slot].data();
}

// Query rows [i0, i0 + bi) of one (clip, head): q, k, v, o are the clip's [n, d] rows (row stride d); lse [n].
template <typename T>
void forward_block(const T* q, const T* k, const T* v, T* o, T* lse, int64_t i0, int64_t bi, int64_t n, int64_t d,
                   T scale, int64_t block_cols) {
  T* s = scratch<T>(0, bi * std::min(block_cols, n));
  T* acc = scratch<T>(1, bi * d);
  T* m = scratch<T>(2, 2 * bi);
  T* l = m + bi;
  std::fill(acc, acc + bi * d, T(0));
  std::fill(m, m + bi, -std::numeric_limits<T>::infinity());
  std::fill(l, l + bi, T(0));
  for (int64_t j0 = 0; j0 < n; j0 += block_cols) {
    const int64_t bj = std::min(block_cols, n - j0);
    gemm(false, true, bi, bj, d, scale, q + i0 * d, d, k + j0 * d, d, T(0), s, bj);  // S = Q K^T scale
    for (int64_t r = 0; r < bi; ++r) {
      T* sr = s + r * bj;
      const T new_max = row_max(sr, bj, m[r]);
      for (int64_t c = 0; c < bj; ++c) sr[c] = exp_of(sr[c] - new_max);  // P~ = exp(S - m_new)
      if (new_max != m[r]) {  // rescale what was accumulated under the old max (exp(-inf) = 0 at first)
        const T correction = exp_of(m[r] - new_max);
        l[r] *= correction;
        for (int64_t e = 0; e < d; ++e) acc[r * d + e] *= correction;
        m[r] = new_max;
      }
      l[r] += row_sum(sr, bj);
    }
    gemm(false, false, bi, d, bj, T(1), s, bj, v + j0 * d, d, T(1), acc, d);  // acc += P~ V
  }
  for (int64_t r = 0; r < bi; ++r) {
    const T inv = T(1) / l[r];
    for (int64_t e = 0; e < d; ++e) o[(i0 + r) * d + e] = acc[r * d + e] * inv;
    lse[i0 + r] = m[r] + std::log(l[r]);
  }
}

template <typename T>
void backward_one(const T* q, const T* k, const T* v, const T* o, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                  int64_t n, int64_t d, T scale, int64_t B) {
  const int64_t b = std::min(B, n);  // a block never needs more than the clip
  T* delta = scratch<T>(0, n);
  T* p = scratch<T>(1, b * b);
  T* dp = scratch<T>(2, b * b);
  for (int64_t r = 0; r < n; ++r) delta[r] = row_dot(dout + r * d, o + r * d, d);  // D = rowsum(dO * O)
  std::fill(dq, dq + n * d, T(0));
  std::fill(dk, dk + n * d, T(0));
  std::fill(dv, dv + n * d, T(0));
  for (int64_t j0 = 0; j0 < n; j0 += B) {
    const int64_t bj = std::min(B, n - j0);
    for (int64_t i0 = 0; i0 < n; i0 += B) {
      const int64_t bi = std::min(B, n - i0);
      gemm(false, true, bi, bj, d, scale, q + i0 * d, d, k + j0 * d, d, T(0), p, bj);  // S
      for (int64_t r = 0; r < bi; ++r) {
        T* pr = p + r * bj;
        const T l = lse[i0 + r];
        for (int64_t c = 0; c < bj; ++c) pr[c] = exp_of(pr[c] - l);  // P, recomputed from the logsumexp
      }
      gemm(true, false, bj, d, bi, T(1), p, bj, dout + i0 * d, d, T(1), dv + j0 * d, d);  // dV += P^T dO
      gemm(false, true, bi, bj, d, T(1), dout + i0 * d, d, v + j0 * d, d, T(0), dp, bj);  // dP = dO V^T
      for (int64_t r = 0; r < bi; ++r) {
        T* dr = dp + r * bj;
        const T* pr = p + r * bj;
        const T dl = delta[i0 + r];
        for (int64_t c = 0; c < bj; ++c) dr[c] = pr[c] * (dr[c] - dl);  // dS = P * (dP - D)
      }
      gemm(false, false, bi, d, bj, scale, dp, bj, k + j0 * d, d, T(1), dq + i0 * d, d);  // dQ += dS K s
      gemm(true, false, bj, d, bi, scale, dp, bj, q + i0 * d, d, T(1), dk + j0 * d, d);   // dK += dS^T Q s
    }
  }
}

// Runs f(clip_begin, clip_size, head) for every (clip, head) pair, in parallel.
template <typename F>
void for_each_clip_head(const std::vector<int64_t>& offsets, int64_t heads, F f) {
  const int64_t clips = static_cast<int64_t>(offsets.size()) - 1, tasks = clips * heads;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / heads, h = t % heads, n = offsets[b + 1] - offsets[b];
    if (n > 0) f(offsets[b], n, h);
  }
}

template <typename T>
void forward_all(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                 const std::vector<int64_t>& offsets, double scale, const TiledBlocks& blocks) {
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2);
  const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
  T *po = o.data<T>(), *pl = lse.data<T>();
  // One task per (clip, head, block of query rows): the blocks are independent in the forward pass, so
  // even one long clip with few heads keeps every thread busy.
  struct Task {
    int64_t begin, n, h, i0;
  };
  std::vector<Task> tasks;
  for (size_t b = 0; b + 1 < offsets.size(); ++b) {
    const int64_t n = offsets[b + 1] - offsets[b];
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i0 = 0; i0 < n; i0 += blocks.rows) tasks.push_back({offsets[b], n, h, i0});
  }
#pragma omp parallel for schedule(dynamic)
  for (size_t t = 0; t < tasks.size(); ++t) {
    const Task& task = tasks[t];
    const int64_t at = (task.h * N + task.begin) * d;
    forward_block<T>(pq + at, pk + at, pv + at, po + at, pl + task.h * N + task.begin, task.i0,
                     std::min(blocks.rows, task.n - task.i0), task.n, d, T(scale), blocks.cols);
  }
}

template <typename T>
void backward_all(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                  const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                  const std::vector<int64_t>& offsets, double scale, int64_t block) {
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2);
  for_each_clip_head(offsets, H, [&](int64_t begin, int64_t n, int64_t h) {
    const int64_t at = (h * N + begin) * d;
    backward_one<T>(q.data<T>() + at, k.data<T>() + at, v.data<T>() + at, o.data<T>() + at,
                    lse.data<T>() + h * N + begin, dout.data<T>() + at, dq.data<T>() + at, dk.data<T>() + at,
                    dv.data<T>() + at, n, d, T(scale), block);
  });
}

void check_blocks(const TiledBlocks& blocks) {
  if (blocks.rows < 1 || blocks.cols < 1 || blocks.backward < 1) {
    throw std::invalid_argument("tiled attention: block sizes must be >= 1, got " + std::to_string(blocks.rows) +
                                " x " + std::to_string(blocks.cols) + ", backward " + std::to_string(blocks.backward));
  }
}

}  // namespace

void check_attention_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& offsets) {
  const int64_t tokens = offsets.empty() ? 0 : offsets.back();
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != tokens) {
    throw std::invalid_argument("attention (CPU): expected q, k, v of one shape [H, " + std::to_string(tokens) +
                                ", d], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                                shape_str(v.shape()));
  }
  const DType dtype = q.dtype();
  if ((dtype != DType::Float32 && dtype != DType::Float64) || k.dtype() != dtype || v.dtype() != dtype) {
    throw std::invalid_argument("attention (CPU): expected float32 or float64 q, k, v of one dtype");
  }
  if (!q.device().is_cpu()) throw std::invalid_argument("attention (CPU): a CPU kernel, got " + q.device().str());
  if (!q.is_contiguous() || !k.is_contiguous() || !v.is_contiguous()) {
    throw std::invalid_argument("attention (CPU): expected contiguous q, k, v");
  }
}

AttentionForwardResult tiled_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                               const std::vector<int64_t>& offsets, double scale, TiledBlocks blocks) {
  check_blocks(blocks);
  check_attention_inputs(q, k, v, offsets);
  // The clips tile [0, N): every row of out and lse is written.
  const Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  const Tensor lse = Tensor::empty({q.size(0), q.size(1)}, q.dtype(), q.device());
  if (q.dtype() == DType::Float32) forward_all<float>(q, k, v, out, lse, offsets, scale, blocks);
  else forward_all<double>(q, k, v, out, lse, offsets, scale, blocks);
  return {out, {lse}};
}

AttentionGradients tiled_attention_backward(const Tensor& dout_in, const Tensor& q, const Tensor& k, const Tensor& v,
                                            const AttentionForwardResult& forward,
                                            const std::vector<int64_t>& offsets, double scale, TiledBlocks blocks) {
  check_blocks(blocks);
  check_attention_inputs(q, k, v, offsets);
  const Tensor dout = ops::contiguous(ops::to_dtype(dout_in, q.dtype()));
  const Tensor o = ops::contiguous(forward.out), lse = ops::contiguous(forward.saved.at(0));
  AttentionGradients g;
  g.dq = Tensor::empty(q.shape(), q.dtype(), q.device());
  g.dk = Tensor::empty(q.shape(), q.dtype(), q.device());
  g.dv = Tensor::empty(q.shape(), q.dtype(), q.device());
  if (q.dtype() == DType::Float32) backward_all<float>(q, k, v, o, lse, dout, g.dq, g.dk, g.dv, offsets, scale, blocks.backward);
  else backward_all<double>(q, k, v, o, lse, dout, g.dq, g.dk, g.dv, offsets, scale, blocks.backward);
  return g;
}

}  // namespace glance::cpu
