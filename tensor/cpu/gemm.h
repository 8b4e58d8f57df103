// The CPU GEMM: C = alpha * op(A) * op(B) + beta * C on row-major matrices.
//
//   op(A) is [M, K]: A itself (trans_a = false, A is M x K with row stride lda)
//                    or A transposed (trans_a = true, A is K x M with row stride lda)
//   op(B) is [K, N]: likewise with trans_b and ldb
//   C is [M, N] with row stride ldc
//
// BLAS semantics (sgemm, dgemm): beta == 0 never reads C (NaN there is overwritten); K == 0 or alpha == 0 gives
// C = beta * C without reading A or B; M == 0 or N == 0 does nothing.
//
// A cache-blocked, packed GEMM in the BLIS style with a SIMD micro-kernel (AVX-512, AVX2+FMA or portable,
// chosen at compile time), threaded with OpenMP over omp_get_max_threads() threads. The result does not
// depend on the thread count (bit for bit). See docs/01-tensors.md ("Matrix multiply") for the walk-through.
#pragma once
#include <cstdint>

namespace glance::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// The textbook triple loop, kept as the reference the fast kernels are tested against.
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace glance::cpu
