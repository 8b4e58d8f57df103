// cudasim: a cuBLAS stand-in. Each GEMM is the textbook loop of the cuBLAS documentation, written from the
// documentation alone (not from glance's cuda/matmul.cu, whose row-major/column-major trick it is there to
// check):
//
//   C_i = alpha * op(A_i) * op(B_i) + beta * C_i,   i < batchCount,
//   A_i = A + i * strideA (likewise B, C); every matrix column-major: element (r, c) of a matrix stored with
//   leading dimension ld is at [r + c * ld];
//   op(A) is m x k: A itself (transa == CUBLAS_OP_N, an lda x k array, lda >= max(1, m)) or A^T (CUBLAS_OP_T,
//   an lda x m array, lda >= max(1, k)); op(B) is k x n: B (ldb x n, ldb >= max(1, k)) or B^T (ldb x k,
//   ldb >= max(1, n)); C is m x n, ldc >= max(1, m);
//   beta == 0: C is not read (it may hold NaN).
//
// Arguments are validated as the documentation lists (CUBLAS_STATUS_INVALID_VALUE, NOT_INITIALIZED,
// NOT_SUPPORTED), and every element a call reads or writes must lie inside one cudaMalloc allocation (the
// operand ranges are checked before the loop; a violation aborts with the operand named, as an illegal
// address would kill the GPU context). Accumulation is in the compute type (float for CUBLAS_COMPUTE_32F, with
// fused multiply-adds as GPU kernels do). CUBLAS_COMPUTE_32F_FAST_TF32 rounds A and B to TF32 first (10
// explicit mantissa bits, round to nearest even); products of TF32 values are exact in float.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "sim.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasMath_t {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
};
enum cublasComputeType_t {
  CUBLAS_COMPUTE_16F = 64,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_32F_FAST_16F = 74,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
  CUBLAS_COMPUTE_64F = 70,
  CUBLAS_COMPUTE_64F_PEDANTIC = 71,
};
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 };
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
using cudaDataType = cudaDataType_t;

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};
using cublasHandle_t = cublasContext*;

namespace sim::blas {
inline std::set<cublasHandle_t>& handles() {
  static std::set<cublasHandle_t> s;
  return s;
}
inline bool live(cublasHandle_t h) { return h != nullptr && handles().count(h) > 0; }

// float -> TF32: keep the top 10 mantissa bits, round to nearest even (NaN and infinity pass through).
inline float to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0xFFFu + ((u >> 13) & 1u);
  u &= ~0x1FFFu;
  std::memcpy(&x, &u, 4);
  return x;
}

// The elements of one column-major operand that a call touches must lie in one device allocation.
inline void check_operand(const char* fn, const char* name, const void* base, size_t elem, int rows, int cols, int ld,
                          long long stride, int batch) {
  if (rows == 0 || cols == 0 || batch == 0) return;
  for (int i = 0; i < batch; ++i) {
    const char* p = static_cast<const char*>(base) + static_cast<long long>(i) * stride * static_cast<long long>(elem);
    const size_t span = (static_cast<size_t>(cols - 1) * ld + rows) * elem;
    if (!find_allocation(p, span)) {
      fail(std::string(fn) + ": operand " + name + " of batch entry " + std::to_string(i) + " (" + std::to_string(rows) +
           " x " + std::to_string(cols) + ", ld " + std::to_string(ld) + ") is not inside one device allocation: an " +
           "illegal address on a GPU");
    }
  }
}

template <typename In, typename Acc>
cublasStatus_t gemm(const char* fn, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    Acc alpha, const In* A, int lda, long long sa, const In* B, int ldb, long long sb, Acc beta, In* C,
                    int ldc, long long sc, int batch, bool tf32) {
  if (!live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ta_ok = ta == CUBLAS_OP_N || ta == CUBLAS_OP_T || ta == CUBLAS_OP_C;
  const bool tb_ok = tb == CUBLAS_OP_N || tb == CUBLAS_OP_T || tb == CUBLAS_OP_C;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || !ta_ok || !tb_ok) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, tb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  const bool na = ta == CUBLAS_OP_N, nb = tb == CUBLAS_OP_N;
  if (k > 0 && alpha != Acc(0)) {
    check_operand(fn, "A", A, sizeof(In), na ? m : k, na ? k : m, lda, sa, batch);
    check_operand(fn, "B", B, sizeof(In), nb ? k : n, nb ? n : k, ldb, sb, batch);
  }
  check_operand(fn, "C", C, sizeof(In), m, n, ldc, sc, batch);
  const auto in = [tf32](In x) -> Acc {
    if constexpr (std::is_same_v<In, float>) {
      if (tf32) return Acc(to_tf32(x));
    }
    return Acc(x);
  };
  for (int i = 0; i < batch; ++i) {
    const In* Ai = A + i * sa;
    const In* Bi = B + i * sb;
    In* Ci = C + i * sc;
    for (int c = 0; c < n; ++c) {
      for (int r = 0; r < m; ++r) {
        Acc acc = 0;
        for (int p = 0; p < k; ++p) {
          const Acc a = in(na ? Ai[r + static_cast<long long>(p) * lda] : Ai[p + static_cast<long long>(r) * lda]);
          const Acc b = in(nb ? Bi[p + static_cast<long long>(c) * ldb] : Bi[c + static_cast<long long>(p) * ldb]);
          acc = std::fma(a, b, acc);
        }
        In& out = Ci[r + static_cast<long long>(c) * ldc];
        out = beta == Acc(0) ? In(alpha * acc) : In(alpha * acc + beta * Acc(out));
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace sim::blas

inline cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  if (sim::device_count() <= 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  *h = new cublasContext();
  sim::blas::handles().insert(*h);
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  if (!sim::blas::live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  sim::blas::handles().erase(h);
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t stream) {
  if (!sim::blas::live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream != nullptr) sim::fail("cublasSetStream: only the legacy default stream (0) is emulated");
  h->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  if (!sim::blas::live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void* workspace, size_t bytes) {
  if (!sim::blas::live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && workspace == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;  // the emulated GEMMs need no workspace
}
#define cublasSetWorkspace cublasSetWorkspace_v2
#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetStream cublasSetStream_v2

inline const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}

inline cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const float* alpha, const float* A, int lda, const float* B, int ldb,
                                     const float* beta, float* C, int ldc) {
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  const bool tf32 = h && h->math == CUBLAS_TF32_TENSOR_OP_MATH;
  return sim::blas::gemm<float, float>("cublasSgemm", h, ta, tb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta, C, ldc,
                                       0, 1, tf32);
}
inline cublasStatus_t cublasDgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const double* alpha, const double* A, int lda, const double* B, int ldb,
                                     const double* beta, double* C, int ldc) {
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  return sim::blas::gemm<double, double>("cublasDgemm", h, ta, tb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta, C,
                                         ldc, 0, 1, false);
}
#define cublasSgemm cublasSgemm_v2
#define cublasDgemm cublasDgemm_v2

inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                int n, int k, const float* alpha, const float* A, int lda,
                                                long long int strideA, const float* B, int ldb, long long int strideB,
                                                const float* beta, float* C, int ldc, long long int strideC,
                                                int batchCount) {
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  const bool tf32 = h && h->math == CUBLAS_TF32_TENSOR_OP_MATH;
  return sim::blas::gemm<float, float>("cublasSgemmStridedBatched", h, ta, tb, m, n, k, *alpha, A, lda, strideA, B,
                                       ldb, strideB, *beta, C, ldc, strideC, batchCount, tf32);
}
inline cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                int n, int k, const double* alpha, const double* A, int lda,
                                                long long int strideA, const double* B, int ldb, long long int strideB,
                                                const double* beta, double* C, int ldc, long long int strideC,
                                                int batchCount) {
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  return sim::blas::gemm<double, double>("cublasDgemmStridedBatched", h, ta, tb, m, n, k, *alpha, A, lda, strideA, B,
                                         ldb, strideB, *beta, C, ldc, strideC, batchCount, false);
}

// The Ex form: A, B, C of one type; float with a 32F compute type, double with 64F (the combinations glance
// could ask for; the others answer CUBLAS_STATUS_NOT_SUPPORTED here). alpha and beta have the compute type.
inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                                                 int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                                 int lda, long long int strideA, const void* B, cudaDataType Btype,
                                                 int ldb, long long int strideB, const void* beta, void* C,
                                                 cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
                                                 cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool f32 = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F;
  const bool f64 = Atype == CUDA_R_64F && Btype == CUDA_R_64F && Ctype == CUDA_R_64F;
  if (f32 && (computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_PEDANTIC ||
              computeType == CUBLAS_COMPUTE_32F_FAST_TF32)) {
    return sim::blas::gemm<float, float>("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k,
                                         *static_cast<const float*>(alpha), static_cast<const float*>(A), lda, strideA,
                                         static_cast<const float*>(B), ldb, strideB, *static_cast<const float*>(beta),
                                         static_cast<float*>(C), ldc, strideC, batchCount,
                                         computeType == CUBLAS_COMPUTE_32F_FAST_TF32);
  }
  if (f64 && (computeType == CUBLAS_COMPUTE_64F || computeType == CUBLAS_COMPUTE_64F_PEDANTIC)) {
    return sim::blas::gemm<double, double>("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k,
                                           *static_cast<const double*>(alpha), static_cast<const double*>(A), lda,
                                           strideA, static_cast<const double*>(B), ldb, strideB,
                                           *static_cast<const double*>(beta), static_cast<double*>(C), ldc, strideC,
                                           batchCount, false);
  }
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
