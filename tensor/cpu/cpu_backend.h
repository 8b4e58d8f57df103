// CpuBackend: the Backend (tensor/backend.h) for host memory. One class, its methods spread over one file
// per concept so each stays readable:
//
//   cpu_backend.cpp  memory: aligned allocation, host copies
//   elementwise.cpp  fill, copy (with dtype conversion), unary, binary, where
//   reduce.cpp       reduce (sum/max/min over axes), arg_reduce
//   matmul.cpp       batched matmul on top of the GEMM (gemm.h)
//   rows.cpp         softmax / log-softmax rows, layer norm forward and backward
//   indexing.cpp     index_select, gather, scatter_add
//   random.cpp       Philox4x32-10 and the random fills
//   attention.cpp    packed attention: the tiled (FlashAttention-style) kernel, forward and backward
//   fused.cpp        the fused ops: bias + GELU, residual + layer norm, softmax + cross-entropy, AdamW
//
// strided_loop.h is the shared helper that turns strided operands into rows for the elementwise kernels.
#pragma once
#include "tensor/backend.h"

namespace glance {

// Not final: a test may install a subclass that overrides an optional method (tests/nn/backend_testing.h).
class CpuBackend : public Backend {
 public:
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

  // The tiled (FlashAttention-style) kernel of attention.cpp.
  AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionClips& clips, const AttentionOptions& options) override;
  AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionForwardResult& forward, const AttentionClips& clips,
                                        const AttentionOptions& options) override;

  // The fused ops of fused.cpp: one pass each; the default compositions (tensor/fused_default.cpp) stay the
  // reference they are tested against, and take any call these kernels do not fit (a dtype, a strided view).
  bool has_fused(FusedOp op) const override;
  Tensor bias_gelu(const Tensor& x, const Tensor& bias) override;
  Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias) override;
  ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                              const Tensor& bias, double eps) override;
  SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                  double label_smoothing) override;
  void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                  const AdamWParams& params) override;
};

// The process-wide CPU backend (what backend_for(Device::cpu()) returns).
Backend* cpu_backend_instance();

}  // namespace glance
