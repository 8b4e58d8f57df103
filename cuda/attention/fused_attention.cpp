// The host side of fused_attention.h: checks each problem and its pointers with errors that name the
// offending value, then calls the launchers in fused_forward_fp32.cu, fused_backward_fp32.cu and
// fused_forward_bf16.cu. Launch failures come back as exceptions naming the kernel and its grid.
#include "cuda/attention/fused_attention.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/attention/launch.h"

namespace glance::cuda::attention {

namespace {

// GLANCE_CUDA_DEBUG=1: pointer-kind checks, a host copy of cu_seqlens checked, a sync after each kernel.
bool debug_checks() {
  static const bool on = [] {
    const char* e = std::getenv("GLANCE_CUDA_DEBUG");
    return e != nullptr && *e != '\0' && std::string(e) != "0";
  }();
  return on;
}

std::string describe(const Problem& p) {
  return "H " + std::to_string(p.heads) + ", N_total " + std::to_string(p.total_tokens) + ", d " +
         std::to_string(p.head_dim) + ", clips " + std::to_string(p.batch) + ", max_len " + std::to_string(p.max_len);
}

void check_problem(const Problem& p, const std::string& op) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(op + ": " + what + " (" + describe(p) + ")"); };
  if (!supported_head_dim(p.head_dim)) {
    fail("head dim " + std::to_string(p.head_dim) +
         " has no kernel; the compiled head dims are 32, 64 and 128 (zero-pad q, k, v to the next one: the scores "
         "do not change; glance::cuda::fused_attention does this)");
  }
  if (p.heads < 1 || p.heads > 65535) fail("heads must be in [1, 65535] (the grid's y), got " + std::to_string(p.heads));
  if (p.batch < 0 || p.batch > 65535) fail("clips must be in [0, 65535] (the grid's z), got " + std::to_string(p.batch));
  if (p.total_tokens < 0 || p.total_tokens > INT32_MAX) {
    fail("N_total must be in [0, 2^31 - 1] (cu_seqlens is int32), got " + std::to_string(p.total_tokens));
  }
  if (p.max_len < 0 || p.max_len > p.total_tokens) fail("max_len must be in [0, N_total]");
  if (p.total_tokens > 0 && (p.batch == 0 || p.max_len == 0)) fail("N_total > 0 tokens, but no clip or max_len 0");
  if (static_cast<int64_t>(p.max_len) * p.batch < p.total_tokens) {
    fail("max_len * clips < N_total, so some clip is longer than max_len and its last tiles would never run");
  }
  if (p.batch > 0 && p.cu_seqlens == nullptr) fail("cu_seqlens is null");
  if (!std::isfinite(p.scale)) fail("scale is not finite");
}

void check_pointer(const void* ptr, size_t alignment, const char* name, const std::string& op) {
  if (ptr == nullptr) throw std::invalid_argument(op + ": " + name + " is null");
  if (reinterpret_cast<uintptr_t>(ptr) % alignment != 0) {
    char where[32];
    std::snprintf(where, sizeof where, "%p", ptr);
    throw std::invalid_argument(op + ": " + name + " (" + where + ") is not " + std::to_string(alignment) +
                                "-byte aligned; the kernels move 16-byte vectors (a view that starts at an element "
                                "offset can cause this: make it contiguous first)");
  }
  if (!debug_checks()) return;
  cudaPointerAttributes a{};
  const cudaError_t err = cudaPointerGetAttributes(&a, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::invalid_argument(op + ": cannot query pointer " + name + ": " + cudaGetErrorString(err));
  }
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) {
    throw std::invalid_argument(op + ": " + name + " is not device memory (cudaMemoryType " + std::to_string(a.type) +
                                "); the kernels read and write GPU memory only");
  }
}

// Under GLANCE_CUDA_DEBUG: copies cu_seqlens to the host and checks it describes the problem.
void check_cu_seqlens(const Problem& p, const std::string& op) {
  if (!debug_checks() || p.batch == 0) return;
  check_pointer(p.cu_seqlens, 4, "cu_seqlens", op);
  std::vector<int32_t> cu(static_cast<size_t>(p.batch) + 1);
  detail::check_call(cudaMemcpyAsync(cu.data(), p.cu_seqlens, cu.size() * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                     p.stream),
                     "GLANCE_CUDA_DEBUG: copying cu_seqlens to the host");
  detail::check_call(cudaStreamSynchronize(p.stream), "GLANCE_CUDA_DEBUG: cudaStreamSynchronize");
  auto fail = [&](const std::string& what) { throw std::invalid_argument(op + ": cu_seqlens " + what + " (" + describe(p) + ")"); };
  if (cu[0] != 0) fail("[0] is " + std::to_string(cu[0]) + ", not 0");
  for (int b = 0; b < p.batch; ++b) {
    const int64_t len = int64_t(cu[b + 1]) - cu[b];
    if (len < 0) fail("decreases at clip " + std::to_string(b));
    if (len > p.max_len) fail("clip " + std::to_string(b) + " has " + std::to_string(len) + " tokens, more than max_len");
  }
  if (cu[p.batch] != p.total_tokens) fail("ends at " + std::to_string(cu[p.batch]) + ", not at N_total");
}

// An error left pending by earlier work would otherwise be reported by our next launch.
void check_nothing_pending(const std::string& op) {
  const cudaError_t err = cudaPeekAtLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(op + ": a CUDA error was already pending before this call: " + cudaGetErrorName(err) + ": " +
                             cudaGetErrorString(err));
  }
}

}  // namespace

bool supported_head_dim(int head_dim) { return head_dim == 32 || head_dim == 64 || head_dim == 128; }

void forward_fp32(const Problem& p, const float* q, const float* k, const float* v, float* out, float* lse) {
  const std::string op = "fused attention forward_fp32";
  check_problem(p, op);
  if (p.total_tokens == 0) return;
  check_pointer(q, 16, "q", op), check_pointer(k, 16, "k", op), check_pointer(v, 16, "v", op);
  check_pointer(out, 16, "out", op), check_pointer(lse, 4, "lse", op);
  check_cu_seqlens(p, op);
  check_nothing_pending(op);
  detail::launch_forward_fp32(p, q, k, v, out, lse);
}

void backward_fp32(const Problem& p, const float* q, const float* k, const float* v, const float* out,
                   const float* lse, const float* dout, float* dq, float* dk, float* dv, float* delta,
                   bool deterministic) {
  const std::string op = "fused attention backward_fp32";
  check_problem(p, op);
  if (p.total_tokens == 0) return;
  check_pointer(q, 16, "q", op), check_pointer(k, 16, "k", op), check_pointer(v, 16, "v", op);
  check_pointer(out, 16, "out", op), check_pointer(lse, 4, "lse", op), check_pointer(dout, 16, "dout", op);
  check_pointer(dq, 16, "dq", op), check_pointer(dk, 16, "dk", op), check_pointer(dv, 16, "dv", op);
  check_pointer(delta, 4, "delta", op);
  check_cu_seqlens(p, op);
  check_nothing_pending(op);
  detail::launch_backward_fp32(p, q, k, v, out, lse, dout, dq, dk, dv, delta, deterministic);
}

void forward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, void* out,
                  float* lse) {
  const std::string op = type == HalfType::BFloat16 ? "fused attention forward_half (bf16)"
                                                    : "fused attention forward_half (fp16)";
  check_problem(p, op);
  if (p.total_tokens == 0) return;
  check_pointer(q, 16, "q", op), check_pointer(k, 16, "k", op), check_pointer(v, 16, "v", op);
  check_pointer(out, 2, "out", op), check_pointer(lse, 4, "lse", op);
  check_cu_seqlens(p, op);
  check_nothing_pending(op);
  detail::launch_forward_half(p, type, q, k, v, out, lse);
}

void backward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, const void* out,
                   const float* lse, const void* dout, void* dq, void* dk, void* dv, float* delta,
                   float* dq_accum) {
  const std::string op = type == HalfType::BFloat16 ? "fused attention backward_half (bf16)"
                                                    : "fused attention backward_half (fp16)";
  check_problem(p, op);
  if (p.total_tokens == 0) return;
  check_pointer(q, 16, "q", op), check_pointer(k, 16, "k", op), check_pointer(v, 16, "v", op);
  check_pointer(out, 2, "out", op), check_pointer(lse, 4, "lse", op), check_pointer(dout, 16, "dout", op);
  if (dq != nullptr) check_pointer(dq, 2, "dq", op);  // null: dQ stays in dq_accum (fp32)
  check_pointer(dk, 2, "dk", op), check_pointer(dv, 2, "dv", op);
  check_pointer(delta, 4, "delta", op), check_pointer(dq_accum, 4, "dq_accum", op);
  check_cu_seqlens(p, op);
  check_nothing_pending(op);
  detail::launch_backward_half(p, type, q, k, v, out, lse, dout, dq, dk, dv, delta, dq_accum);
}

Tiles tiles(Kernel kernel, int head_dim) {
  switch (kernel) {
    case Kernel::ForwardFp32: return detail::forward_fp32_tiles(head_dim);
    case Kernel::BackwardKV: return detail::backward_kv_tiles(head_dim);
    case Kernel::BackwardDQ: return detail::backward_dq_tiles(head_dim);
    case Kernel::ForwardHalf: return detail::forward_half_tiles(head_dim);
    case Kernel::BackwardHalf: return detail::backward_half_tiles(head_dim);
  }
  return {};
}

namespace detail {

void check_call(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw std::runtime_error(std::string("fused attention: ") + what + " failed: " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err));
}

void check_launch(const char* kernel, int head_dim, dim3 grid, int smem_bytes, cudaStream_t stream) {
  cudaError_t err = cudaGetLastError();
  const char* when = "at launch";
  if (err == cudaSuccess && debug_checks()) {
    err = cudaStreamSynchronize(stream);
    when = "while running (GLANCE_CUDA_DEBUG sync)";
  }
  if (err == cudaSuccess) return;
  throw std::runtime_error(std::string("fused attention: kernel ") + kernel + "<d=" + std::to_string(head_dim) +
                           "> with grid (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                           std::to_string(grid.z) + ") x 128 threads and " + std::to_string(smem_bytes) +
                           " bytes of shared memory failed " + when + ": " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err));
}

void set_smem_limit(const void* kernel_fn, const char* kernel, int smem_bytes) {
  if (smem_bytes <= 48 * 1024) return;  // the default limit
  // Set on every launch (a cheap driver call): the attribute belongs to the current device's context.
  const cudaError_t err = cudaFuncSetAttribute(kernel_fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (err == cudaSuccess) return;
  cudaGetLastError();
  int device = 0, optin = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  cudaGetLastError();
  throw std::runtime_error(std::string("fused attention: kernel ") + kernel + " needs " + std::to_string(smem_bytes) +
                           " bytes of shared memory per block; device " + std::to_string(device) + " allows " +
                           std::to_string(optin) + " (" + cudaGetErrorString(err) + ")");
}

}  // namespace detail

}  // namespace glance::cuda::attention
