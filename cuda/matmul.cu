// CudaBackend, part 6: batched matmul. out[b] = a[b] @ b[b] with a: [batch, M, K], b: [batch, K, N] (any
// strides; a batch stride of 0 broadcasts) and out: [batch, M, N] contiguous.
//
// float32 and float64 go to cuBLAS (cublasGemmStridedBatchedEx / cublasDgemmStridedBatched); int32 and int64,
// which cuBLAS does not do, to a plain kernel (one thread per output element, wrapping like the CPU).
//
// ---- row-major data, column-major cuBLAS ----
// cuBLAS reads a matrix from a buffer with a leading dimension ld as   X(r, c) = buf[r + c * ld]
// (column-major). Our out is row-major: C(i, j) = buf[i * N + j]. Read column-major with ld = N, that buffer
// is the N x M matrix X(j, i) = C(i, j), i.e. C^T. And C^T = (A B)^T = B^T A^T. So we ask cuBLAS for
//
//     C^T (N x M)  =  op(B-buffer) (N x K)  *  op(A-buffer) (K x M)          m = N, n = M, k = K, ldc = N
//
// i.e. with the operands swapped, and no transposed copies anywhere. What op to use depends on each view's
// strides. A row-major [rows, cols] view with element (i, j) at i*rs + j*cs, read column-major:
//   cs == 1: buf[i*rs + j] is Y(j, i) with ld = rs: the buffer *is* the view's transpose    -> CUBLAS_OP_N
//   rs == 1: buf[i + j*cs] is Y(i, j) with ld = cs: the buffer is the view itself           -> CUBLAS_OP_T
// We need B^T for the first operand and A^T for the second, which is what OP_N gives for a row-major
// (cs == 1) view, while a transposed view (rs == 1, e.g. a K^T in attention) takes OP_T: no copy either way.
// cuBLAS wants ld >= the stored matrix's row count: rs >= cols for OP_N, cs >= rows for OP_T. A view that
// fits neither (a column slice with step 2, an expanded row with stride 0) is first copied to a contiguous
// scratch matrix. The batch stride is passed as is, 0 included (one matrix reused for every batch entry).
//
// TF32 (set_allow_tf32): float32 products then use CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, inputs rounded
// to 10 mantissa bits). Off by default: CUBLAS_COMPUTE_32F, exact float32 products, as on the CPU.
#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <stdexcept>

#include "cuda/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"

namespace glance::cuda {

namespace {

std::atomic<bool> g_allow_tf32{false};

cublasHandle_t cublas_handle() {
  // One handle for the process, on the default stream (where every glance kernel runs), created on first use
  // and never destroyed (at exit the driver may be gone before static destructors run).
  static const cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    GLANCE_CUBLAS_CHECK(cublasCreate(&h));
    GLANCE_CUBLAS_CHECK(cublasSetStream(h, 0));
    // cuBLAS's workspace, taken from the caching allocator (as PyTorch does): left to itself, cuBLAS would
    // cudaMalloc one on first use, outside the allocator, and with the cache holding most of the memory that
    // first GEMM could fail where the allocator would have emptied its cache and retried. 32 MiB is NVIDIA's
    // recommendation for Hopper (4 MiB suffices on older GPUs); kept for the process, like the handle.
    constexpr size_t kWorkspaceBytes = size_t(32) << 20;
    GLANCE_CUBLAS_CHECK(cublasSetWorkspace(h, device_allocator().allocate(kWorkspaceBytes), kWorkspaceBytes));
    return h;
  }();
  return handle;
}
// cuBLAS handles may be shared between threads, but not used by two at once while settings change; one lock
// keeps it simple (the GEMM itself runs asynchronously on the GPU after the call returns).
std::mutex g_cublas_mutex;

// How cuBLAS reads one [rows, cols] matrix with strides (rs, cs) (see the top of this file).
struct GemmOperand {
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t ld = 0;
  bool needs_copy = false;
};

GemmOperand gemm_operand(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // A stride along a size-1 axis is never used, so it may be anything: only the other one matters.
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= cols)) return {CUBLAS_OP_N, rows == 1 ? cols : rs, false};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= rows)) return {CUBLAS_OP_T, cols == 1 ? rows : cs, false};
  return {CUBLAS_OP_N, cols, true};
}

// A view whose matrices cuBLAS cannot read, copied to contiguous [batch, rows, cols]. A broadcast batch
// (stride 0) copies one matrix and keeps stride 0.
Tensor contiguous_operand(const Tensor& t) {
  const bool broadcast = t.shape()[0] > 1 && t.strides()[0] == 0;
  Tensor src = broadcast ? t.as_strided({1, t.shape()[1], t.shape()[2]}, t.strides(), t.offset()) : t;
  Tensor dst = Tensor::empty(src.shape(), t.dtype(), t.device());
  backend_instance()->copy(dst, src);
  if (broadcast) return dst.as_strided(t.shape(), {0, t.shape()[2], 1}, 0);
  return dst;
}

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument(std::string("cuda matmul: ") + what + " = " + std::to_string(v) +
                                " does not fit cuBLAS's 32-bit int");
  }
  return static_cast<int>(v);
}

template <typename T>
void matmul_cublas(const Tensor& out, Tensor a, Tensor b) {
  const int64_t batch = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  GemmOperand ga = gemm_operand(M, K, a.strides()[1], a.strides()[2]);
  GemmOperand gb = gemm_operand(K, N, b.strides()[1], b.strides()[2]);
  if (ga.needs_copy) {
    a = contiguous_operand(a);
    ga = gemm_operand(M, K, a.strides()[1], a.strides()[2]);
  }
  if (gb.needs_copy) {
    b = contiguous_operand(b);
    gb = gemm_operand(K, N, b.strides()[1], b.strides()[2]);
  }
  const int64_t stride_a = batch > 1 ? a.strides()[0] : 0, stride_b = batch > 1 ? b.strides()[0] : 0;
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* pc = static_cast<T*>(out.raw_data());
  const T alpha = 1, beta = 0;
  const int m = to_int(N, "N"), n = to_int(M, "M"), k = to_int(K, "K");
  const int lda = to_int(gb.ld, "the leading dimension of b"), ldb = to_int(ga.ld, "the leading dimension of a");

  std::lock_guard<std::mutex> lock(g_cublas_mutex);
  cublasHandle_t handle = cublas_handle();
  // Batches in groups of at most 65535: some cuBLAS kernels put the batch on the grid's z axis, which is
  // limited to 65535.
  constexpr int64_t kMaxBatch = 65535;
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxBatch) {
    const int count = static_cast<int>(std::min(kMaxBatch, batch - b0));
    const T* A = pb + b0 * stride_b;  // cuBLAS's first operand is our b (see the top of this file)
    const T* B = pa + b0 * stride_a;
    T* C = pc + b0 * M * N;
    if constexpr (std::is_same_v<T, float>) {
      const cublasComputeType_t compute = g_allow_tf32.load() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      GLANCE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, gb.op, ga.op, m, n, k, &alpha, A, CUDA_R_32F, lda,
                                                     stride_b, B, CUDA_R_32F, ldb, stride_a, &beta, C, CUDA_R_32F, m,
                                                     M * N, count, compute, CUBLAS_GEMM_DEFAULT));
    } else {
      GLANCE_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, gb.op, ga.op, m, n, k, &alpha, A, lda, stride_b, B, ldb,
                                                    stride_a, &beta, C, m, M * N, count));
    }
  }
}

// Integer matmul: one thread per output element, accumulating in the dtype (wrapping, like the CPU's loop).
template <typename T>
__global__ void matmul_int_kernel(const T* a, const T* b, T* c, int64_t batch, int64_t M, int64_t N, int64_t K,
                                  int64_t sa0, int64_t sa1, int64_t sa2, int64_t sb0, int64_t sb1, int64_t sb2) {
  const int64_t total = batch * M * N;
  for (int64_t idx = global_thread_id(); idx < total; idx += global_thread_count()) {
    const int64_t j = idx % N, i = (idx / N) % M, bi = idx / (M * N);
    const T* arow = a + bi * sa0 + i * sa1;
    const T* bcol = b + bi * sb0 + j * sb2;
    T acc = 0;
    for (int64_t k = 0; k < K; ++k) acc += arow[k * sa2] * bcol[k * sb1];
    c[idx] = acc;
  }
}

template <typename T>
void matmul_int(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t batch = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  const Strides& sa = a.strides();
  const Strides& sb = b.strides();
  matmul_int_kernel<T><<<blocks_for(batch * M * N), kThreads>>>(
      static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()),
      batch, M, N, K, sa[0], sa[1], sa[2], sb[0], sb[1], sb[2]);
  GLANCE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

void CudaBackend::matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
  require_cuda(out, "matmul");
  require_cuda(a, "matmul");
  require_cuda(b, "matmul");
  if (out.dim() != 3 || a.dim() != 3 || b.dim() != 3 || !out.is_contiguous()) {
    throw std::invalid_argument("cuda matmul: expected 3-D operands and a contiguous out");
  }
  a.check_dtype(out.dtype(), "cuda matmul (a)");
  b.check_dtype(out.dtype(), "cuda matmul (b)");
  if (out.numel() == 0) return;
  if (a.shape()[2] == 0) {  // K = 0: every output is an empty sum
    fill(out, 0.0);
    return;
  }
  switch (out.dtype()) {
    case DType::Float32: return matmul_cublas<float>(out, a, b);
    case DType::Float64: return matmul_cublas<double>(out, a, b);
    case DType::Int32: return matmul_int<int32_t>(out, a, b);
    case DType::Int64: return matmul_int<int64_t>(out, a, b);
    default:
      throw std::invalid_argument(std::string("cuda matmul: dtype ") + dtype_name(out.dtype()) + " is not supported");
  }
}

}  // namespace glance::cuda
