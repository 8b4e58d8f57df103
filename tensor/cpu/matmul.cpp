// CpuBackend, part 4: batched matmul. out[b] = a[b] @ b[b] with a: [batch, M, K], b: [batch, K, N] (any
// strides; a batch stride of 0 broadcasts) and out: [batch, M, N] contiguous.
//
// The GEMM (gemm.h) takes row-major matrices with a leading dimension and a transpose flag, which covers
// most views without a copy:
//   element (i, j) at i*rs + j       (column stride 1)  -> trans = false, ld = rs
//   element (i, j) at i + j*cs       (row stride 1)     -> trans = true,  ld = cs   (a transposed view)
//   anything else (stride-2 slices, broadcast rows)     -> copied to a contiguous temporary first.
// A batch of matrices (attention heads) is spread over threads whole matrices each; a few big ones run one
// after the other and the GEMM threads inside each.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <omp.h>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"

namespace glance {

namespace {

// How the GEMM should read one [rows, cols] matrix with strides (rs, cs).
struct MatrixView {
  bool trans = false;
  int64_t ld = 0;
  bool needs_copy = false;
};

MatrixView view_for_gemm(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // A stride along a size-1 axis is never used, so it may be anything: only the other one matters.
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= cols)) return {false, rows == 1 ? cols : rs, false};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= rows)) return {true, cols == 1 ? rows : cs, false};
  return {false, cols, true};
}

// Copies a strided [rows, cols] matrix into a row-major buffer.
template <typename T>
const T* contiguous_copy(const T* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, std::vector<T>& buffer) {
  buffer.resize(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) buffer[i * cols + j] = src[i * rs + j * cs];
  return buffer.data();
}

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float* C) {
  cpu::sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
                 int64_t ldb, double* C) {
  cpu::dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, N);
}

// One batch entry through the GEMM. `scratch_a/b` hold copies when a view needs one.
template <typename T>
void matmul_one(T* c, const T* a, const T* b, int64_t M, int64_t N, int64_t K, const Strides& sa, const Strides& sb,
                std::vector<T>& scratch_a, std::vector<T>& scratch_b) {
  MatrixView va = view_for_gemm(M, K, sa[1], sa[2]);
  MatrixView vb = view_for_gemm(K, N, sb[1], sb[2]);
  if (va.needs_copy) a = contiguous_copy(a, M, K, sa[1], sa[2], scratch_a);
  if (vb.needs_copy) b = contiguous_copy(b, K, N, sb[1], sb[2], scratch_b);
  gemm(va.trans, vb.trans, M, N, K, a, va.ld, b, vb.ld, c);
}

template <typename T>
void matmul_float(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t batch = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  T* c = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const Strides& sa = a.strides();
  const Strides& sb = b.strides();
  // Whole matrices per thread whenever the batch shares out well: one parallel region for the batch
  // instead of one per matrix. Attention has batch = clips x heads of small products, and waking the
  // other threads for each of them cost more than the products (measured: the tiny preset's dense
  // training step, [128 x 16] x [16 x 128] per head, exactly at the old rule's 2^18 "small" limit, took
  // 3,600 parallel regions and 2.5x longer, most of it in futex wake-ups). "Shares out well": the batch is
  // a multiple of the threads, or large enough that one matrix more on some threads is at most a quarter
  // more work, or each product is too small to thread inside anyway. Otherwise (a few large matrices) one
  // after the other, each threaded by the GEMM.
  // (Inside this region the GEMM's own region runs on one thread, since nested parallelism is off; and
  // when called from inside another region, e.g. by the attention's loop over clips, no region at all.)
  const int64_t threads = omp_get_max_threads();
  const bool small_products = M * N * K < (int64_t(1) << 18);
  const bool over_batch = batch >= 2 && (batch % threads == 0 || batch >= 4 * threads || small_products);
  if (threads > 1 && !omp_in_parallel() && over_batch && batch * M * N * K >= cpu::kParallelThreshold) {
#pragma omp parallel
    {
      std::vector<T> scratch_a, scratch_b;  // per thread
#pragma omp for schedule(static)
      for (int64_t i = 0; i < batch; ++i) {
        matmul_one(c + i * M * N, pa + i * sa[0], pb + i * sb[0], M, N, K, sa, sb, scratch_a, scratch_b);
      }
    }
    return;
  }
  std::vector<T> scratch_a, scratch_b;
  for (int64_t i = 0; i < batch; ++i) {
    matmul_one(c + i * M * N, pa + i * sa[0], pb + i * sb[0], M, N, K, sa, sb, scratch_a, scratch_b);
  }
}

// Integer matmul: the textbook loop in i-k-j order, so the innermost loop walks a row of b and of out.
template <typename T>
void matmul_int(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t batch = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  T* c = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const Strides& sa = a.strides();
  const Strides& sb = b.strides();
#pragma omp parallel for schedule(static) if (batch * M * N * K >= cpu::kParallelThreshold)
  for (int64_t row = 0; row < batch * M; ++row) {
    const int64_t bi = row / M, i = row % M;
    T* crow = c + row * N;
    std::fill(crow, crow + N, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const T aik = pa[bi * sa[0] + i * sa[1] + k * sa[2]];
      const T* brow = pb + bi * sb[0] + k * sb[1];
      for (int64_t j = 0; j < N; ++j) crow[j] += aik * brow[j * sb[2]];
    }
  }
}

}  // namespace

void CpuBackend::matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
  const op_profile::Scope profile_scope(OpKind::Gemm);
  if (out.dim() != 3 || a.dim() != 3 || b.dim() != 3 || !out.is_contiguous()) {
    throw std::invalid_argument("cpu matmul: expected 3-D operands and a contiguous out");
  }
  switch (out.dtype()) {
    case DType::Float32: return matmul_float<float>(out, a, b);
    case DType::Float64: return matmul_float<double>(out, a, b);
    case DType::Int32: return matmul_int<int32_t>(out, a, b);
    case DType::Int64: return matmul_int<int64_t>(out, a, b);
    default: throw std::invalid_argument(std::string("cpu matmul: dtype ") + dtype_name(out.dtype()) + " is not supported");
  }
}

}  // namespace glance
