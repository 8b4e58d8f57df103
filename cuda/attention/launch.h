// The launchers behind fused_attention.h, one per kernel file. Internal: fused_attention.cpp validates
// the problem and the pointers, then calls these; they pick the head-dim instantiation, set the dynamic
// shared-memory limit and launch.
#pragma once
#include <cuda_runtime_api.h>

#include "cuda/attention/fused_attention.h"

namespace glance::cuda::attention::detail {

// fused_forward_fp32.cu
void launch_forward_fp32(const Problem& p, const float* q, const float* k, const float* v, float* out, float* lse);
Tiles forward_fp32_tiles(int head_dim);

// fused_backward_fp32.cu
void launch_backward_fp32(const Problem& p, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* dq, float* dk, float* dv, float* delta,
                          bool deterministic);
Tiles backward_kv_tiles(int head_dim);
Tiles backward_dq_tiles(int head_dim);

// fused_forward_bf16.cu
void launch_forward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, void* out,
                         float* lse);
Tiles forward_half_tiles(int head_dim);

// fused_backward_bf16.cu
void launch_backward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v,
                          const void* out, const float* lse, const void* dout, void* dq, void* dk, void* dv,
                          float* delta, float* dq_accum);
Tiles backward_half_tiles(int head_dim);

// fused_attention.cpp: after each launch. Throws std::runtime_error naming the kernel, its grid and its
// shared memory when the launch failed; under GLANCE_CUDA_DEBUG=1 also synchronises the stream, so an
// error inside the kernel (an illegal address) is reported here, by the kernel that made it.
void check_launch(const char* kernel, int head_dim, dim3 grid, int smem_bytes, cudaStream_t stream);
// Throws std::runtime_error naming `what` and the CUDA error when err is not cudaSuccess.
void check_call(cudaError_t err, const char* what);
// Raises the kernel's dynamic shared-memory limit (needed above 48 KB), throwing on failure.
void set_smem_limit(const void* kernel_fn, const char* kernel, int smem_bytes);

}  // namespace glance::cuda::attention::detail
