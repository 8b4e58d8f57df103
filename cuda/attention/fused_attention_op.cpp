#include "cuda/attention/fused_attention_op.h"

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "autograd/node.h"
#include "cuda/attention/fused_attention.h"
#include "tensor/ops.h"

namespace glance::cuda {

namespace {

namespace fa = glance::cuda::attention;

// The compiled head dim a head dim of d runs at (0: none).
int64_t padded_head_dim(int64_t d) { return d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 0; }

// x [H, N, d] as a contiguous [H, N, dp] tensor, zero in the columns d .. dp (x itself when already so).
Tensor pad_head_dim(const Tensor& x, int64_t dp) {
  if (x.size(2) == dp) return ops::contiguous(x);
  Tensor y = ops::zeros({x.size(0), x.size(1), dp}, x.dtype(), x.device());
  ops::copy_(ops::narrow(y, 2, 0, x.size(2)), x);
  return y;
}

Tensor unpad_head_dim(const Tensor& y, int64_t d) {
  return y.size(2) == d ? y : ops::contiguous(ops::narrow(y, 2, 0, d));
}

// Makes q's device current for the launches, and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != index) cudaSetDevice(index);
  }
  ~DeviceGuard() {
    int now = -1;
    if (previous_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const nn::TokenLayout& layout) {
  const std::string op = "fused attention (CUDA)";
  if (!q.device().is_cuda()) {
    throw std::invalid_argument(op + ": q is on " + q.device().str() +
                                "; this kernel runs on a CUDA device: move q, k, v there (ops::to_device), or use "
                                "the \"tiled\" kernel on the CPU");
  }
  if (k.device() != q.device() || v.device() != q.device()) {
    throw std::invalid_argument(op + ": q, k, v must be on one device, got " + q.device().str() + ", " +
                                k.device().str() + ", " + v.device().str());
  }
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != layout.total_tokens()) {
    throw std::invalid_argument(op + ": expected q, k, v of one shape [H, " + std::to_string(layout.total_tokens()) +
                                ", d], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                                shape_str(v.shape()));
  }
  if (q.dtype() != DType::Float32 || k.dtype() != DType::Float32 || v.dtype() != DType::Float32) {
    throw std::invalid_argument(op + ": expected float32 q, k, v, got " + dtype_name(q.dtype()) + ", " +
                                dtype_name(k.dtype()) + ", " + dtype_name(v.dtype()) +
                                " (the bf16/fp16 kernels are glance::cuda::attention::forward_half / backward_half, on raw pointers)");
  }
  const int64_t d = q.size(2);
  if (d < 1 || padded_head_dim(d) == 0) {
    throw std::invalid_argument(op + ": head dim " + std::to_string(d) +
                                " is not supported: the kernels have head dims 32, 64, 128 (smaller ones are "
                                "zero-padded up to those), nothing above 128");
  }
  if (q.size(0) > 65535 || layout.batch_size() > 65535 || q.size(1) > INT32_MAX) {
    throw std::invalid_argument(op + ": at most 65535 heads, 65535 clips and 2^31 - 1 tokens, got " +
                                std::to_string(q.size(0)) + " heads, " + std::to_string(layout.batch_size()) +
                                " clips, " + std::to_string(q.size(1)) + " tokens");
  }
}

}  // namespace

Tensor fused_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const nn::TokenLayout& layout,
                       double scale, FusedAttentionOptions options) {
  check_inputs(q_in, k_in, v_in, layout);
  const Device device = q_in.device();
  DeviceGuard guard(device.index);
  const int64_t H = q_in.size(0), N = q_in.size(1), d = q_in.size(2), dp = padded_head_dim(d);

  const Tensor q = pad_head_dim(q_in, dp), k = pad_head_dim(k_in, dp), v = pad_head_dim(v_in, dp);
  const Tensor cu = ops::to_device(layout.cu_seqlens(), device);  // int32 [B + 1]

  fa::Problem p;
  p.heads = static_cast<int>(H);
  p.total_tokens = N;
  p.head_dim = static_cast<int>(dp);
  p.batch = static_cast<int>(layout.batch_size());
  p.max_len = static_cast<int>(layout.max_tokens());
  p.cu_seqlens = cu.data<int32_t>();
  p.scale = static_cast<float>(scale);
  p.stream = nullptr;  // the legacy default stream, the one the CUDA Backend uses

  const Tensor out_padded = Tensor::empty({H, N, dp}, DType::Float32, device);
  const Tensor lse = Tensor::empty({H, N}, DType::Float32, device);  // every row is written
  fa::forward_fp32(p, q.data<float>(), k.data<float>(), v.data<float>(), out_padded.data<float>(), lse.data<float>());
  Tensor out = unpad_head_dim(out_padded, d);

  autograd::record(
      options.deterministic ? "fused_attention_deterministic" : "fused_attention", {q_in, k_in, v_in}, out,
      [q = q.detach(), k = k.detach(), v = v.detach(), o = out_padded.detach(), lse, cu, p, d, dp,
       deterministic = options.deterministic](const Tensor& g) -> std::vector<Tensor> {
        if (g.device() != q.device()) {
          throw std::invalid_argument("fused attention backward: the gradient is on " + g.device().str() +
                                      ", the inputs on " + q.device().str());
        }
        DeviceGuard guard(q.device().index);
        const Tensor dout = pad_head_dim(ops::to_dtype(g, DType::Float32), dp);
        const Shape shape = q.shape();
        const Tensor dq = Tensor::empty(shape, DType::Float32, q.device());
        const Tensor dk = Tensor::empty(shape, DType::Float32, q.device());
        const Tensor dv = Tensor::empty(shape, DType::Float32, q.device());
        const Tensor delta = Tensor::empty({shape[0], shape[1]}, DType::Float32, q.device());
        (void)cu;  // keeps cu_seqlens (p.cu_seqlens points into it) alive as long as this node
        fa::backward_fp32(p, q.data<float>(), k.data<float>(), v.data<float>(), o.data<float>(), lse.data<float>(),
                          dout.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(),
                          delta.data<float>(), deterministic);
        return {unpad_head_dim(dq, d), unpad_head_dim(dk, d), unpad_head_dim(dv, d)};
      });
  return out;
}

void register_fused_attention() {
  nn::register_attention_kernel("fused", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                            const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale);
  });
  nn::register_attention_kernel("fused_deterministic", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                                          const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale, FusedAttentionOptions{true});
  });
}

namespace {
// Registers the kernels at start-up whenever this object file is part of the program.
[[maybe_unused]] const bool g_registered = (register_fused_attention(), true);
}  // namespace

}  // namespace glance::cuda
