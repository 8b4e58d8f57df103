// CudaBackend: the Backend (tensor/backend.h) for one NVIDIA GPU. One class, its methods spread over one file
// per concept, mirroring the CPU backend (tensor/cpu/cpu_backend.h) so the two can be read side by side:
//
//   cuda_backend.cu   registration, device checks, memory (through allocator.h), host <-> device copies
//   elementwise.cu    fill, copy (with dtype conversion), where   (elementwise.cuh: the engine all of these use)
//   unary.cu          every UnaryOp                 binary.cu   every BinaryOp
//   reduce.cu         reduce (sum/max/min over any axes), arg_reduce
//   matmul.cu         batched matmul through cuBLAS (float, double), a plain kernel for int32/int64
//   rows.cu           softmax / log-softmax rows and their backward, layer norm forward and backward
//   indexing.cu       index_select, gather, scatter_add
//   random.cu         Philox4x32-10 fills, the same numbers as the CPU for the same (seed, offset)
//   fused.cu          the fused ops (fused.h): bias+GELU, residual+LayerNorm, softmax+cross-entropy, the AdamW
//                     update
//   attention/        packed attention: attention_backend.cpp on the fused kernels of fused_attention.h
//
// Conventions shared by every kernel:
//   - one stream: everything runs on the legacy default stream, in order, so a kernel always sees the results
//     of the ones queued before it and the caching allocator can reuse a freed block at once;
//   - every runtime call is checked (check.h), every launch is followed by GLANCE_CUDA_CHECK_LAUNCH();
//   - inputs may be any strided views unless the Backend contract says contiguous (rows, random);
//   - results follow the CPU backend's rules (dtype conversion, NaN propagation, integer division by zero
//     gives 0, the first index wins ties in arg_reduce); floating-point results may differ in the last bits
//     (different summation order, fused multiply-adds, libdevice's exp/erf), never in meaning.
//
// Only cuda:0 is served (one GPU per process); Device::cuda(1) throws, naming the device.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/backend.h"

namespace glance::cuda {

class CudaBackend final : public Backend {
 public:
  void check_device(Device device) override;

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;

  void fill(const Tensor& out, double value) override;
  void arange(const Tensor& out, double start, double step) override;
  void copy(const Tensor& out, const Tensor& in) override;
  void unary(UnaryOp op, const Tensor& out, const Tensor& in) override;
  void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) override;
  void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) override;

  void reduce(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) override;
  void arg_reduce(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) override;

  void matmul(const Tensor& out, const Tensor& a, const Tensor& b) override;

  void softmax(const Tensor& out, const Tensor& in, bool log) override;
  void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) override;
  void layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                          const Tensor& weight, const Tensor& bias, double eps) override;
  void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                           const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) override;

  void index_select(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) override;
  void gather(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) override;
  void scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) override;

  void random(RandomKind kind, const Tensor& out, double a, double b, PhiloxState state) override;

  // The optional methods, all overridden: attention (attention/attention_backend.cpp, the fused kernels) and
  // the fused ops (fused.cu).
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionClips& clips, const AttentionOptions& options) override;
  AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionForwardResult& forward, const AttentionClips& clips,
                                        const AttentionOptions& options) override;
  bool has_fused(FusedOp op) const override { return true; }
  Tensor bias_gelu(const Tensor& x, const Tensor& bias) override;
  Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias) override;
  ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                              const Tensor& bias, double eps) override;
  SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                  double label_smoothing) override;
  void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                  const AdamWParams& params) override;
};

// The process-wide CUDA backend (never destroyed, like the CPU one).
CudaBackend* backend_instance();

}  // namespace glance::cuda

namespace glance {
// The backend that backend_for(Device::cuda()) finds (tensor/device.cpp declares it weak): linking glance_cuda is
// all a program has to do. It touches no CUDA API: a machine without a GPU starts fine and fails only when a
// CUDA tensor is made.
Backend* linked_cuda_backend();
}  // namespace glance

namespace glance::cuda {

// TF32 for float32 matmuls (opt-in, default off). On Ampere and Hopper, TF32 tensor cores multiply float32
// inputs rounded to 10 mantissa bits (about 3 decimal digits) and accumulate in float32: several times the
// throughput of exact float32, with relative errors around 1e-3 instead of 1e-6. Off by default so that GPU
// results match the CPU to float32 precision; turn it on for training speed.
void set_allow_tf32(bool allow);
bool allow_tf32();

// Waits until every queued kernel and copy has finished (for timings and tests).
void synchronize();

// Throws std::runtime_error naming `what` unless t lives on the CUDA device (a CPU tensor handed to a CUDA
// kernel would be read through a host pointer: an illegal address, reported far from here).
void require_cuda(const Tensor& t, const char* what);

}  // namespace glance::cuda
