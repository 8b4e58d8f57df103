#include "cuda/attention/fused_attention_op.h"

#include <cuda_runtime_api.h>

#include <cstdint>
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
  if (x.size(2) == dp) {
    // The kernels load 16-byte vectors: a contiguous view whose storage offset is not a multiple of four
    // floats (a slice of a flat buffer) is copied to a fresh, aligned tensor.
    Tensor y = ops::contiguous(x);
    return reinterpret_cast<uintptr_t>(y.raw_data()) % 16 == 0 ? y : ops::clone(y);
  }
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
                                " (for bf16/fp16 attention pass float32 tensors to the kernels \"fused_bf16\" / \"fused_fp16\")");
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

// 16-bit copies of fp32 tensors, held as uint8 tensors of 2 bytes per element (glance has no 16-bit dtype).
// The allocator's blocks are 512-byte aligned, as the kernels' 16-byte vector loads need.
Tensor half_buffer(int64_t elements, Device device) { return Tensor::empty({2 * elements}, DType::UInt8, device); }

Tensor rounded(const Tensor& x, fa::HalfType type) {  // x: contiguous float32
  Tensor y = half_buffer(x.numel(), x.device());
  fa::round_to_half(type, x.data<float>(), y.data<uint8_t>(), x.numel());
  return y;
}

Tensor widened(const Tensor& x_half, const Shape& shape, fa::HalfType type, Device device) {
  Tensor y = Tensor::empty(shape, DType::Float32, device);
  fa::widen_from_half(type, x_half.data<uint8_t>(), y.data<float>(), y.numel());
  return y;
}

fa::Problem problem_of(const nn::TokenLayout& layout, const Tensor& cu, int64_t H, int64_t N, int64_t dp,
                       double scale) {
  fa::Problem p;
  p.heads = static_cast<int>(H);
  p.total_tokens = N;
  p.head_dim = static_cast<int>(dp);
  p.batch = static_cast<int>(layout.batch_size());
  p.max_len = static_cast<int>(layout.max_tokens());
  p.cu_seqlens = cu.data<int32_t>();
  p.scale = static_cast<float>(scale);
  p.stream = nullptr;  // the legacy default stream, the one the CUDA Backend uses
  return p;
}

// The half backward keeps dK and dV of a 64-key tile in tensor-core fragments: at head dim 128 it needs
// about 120 KB of shared memory per block, which A100 and H100 have (163 / 227 KB) but sm_86 / sm_89 GPUs
// (A10, L4, L40S, RTX 30xx / 40xx: 99 KB) do not.
void check_half_backward_fits(int dp, int device_index) {
  const int need = fa::tiles(fa::Kernel::BackwardHalf, dp).smem_bytes;
  int limit = 0;
  if (cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_index) != cudaSuccess) {
    cudaGetLastError();
    return;  // unknown: the launch will say
  }
  if (need > limit) {
    throw std::invalid_argument("fused attention (CUDA, bf16/fp16): the backward kernel at head dim " +
                                std::to_string(dp) + " needs " + std::to_string(need) +
                                " bytes of shared memory per block; this GPU allows " + std::to_string(limit) +
                                ": train with head dims up to 64 here, or with the fp32 kernel \"fused\"");
  }
}

void check_gradient_device(const Tensor& g, const Tensor& q) {
  if (g.device() != q.device()) {
    throw std::invalid_argument("fused attention backward: the gradient is on " + g.device().str() +
                                ", the inputs on " + q.device().str());
  }
}

// fp32: rungs 3 and 4.
Tensor fused_attention_fp32(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const nn::TokenLayout& layout,
                            double scale, bool deterministic) {
  const Device device = q_in.device();
  const int64_t H = q_in.size(0), N = q_in.size(1), d = q_in.size(2), dp = padded_head_dim(d);
  const Tensor q = pad_head_dim(q_in, dp), k = pad_head_dim(k_in, dp), v = pad_head_dim(v_in, dp);
  const Tensor cu = layout.cu_seqlens_on(device);  // int32 [B + 1], uploaded once per layout
  const fa::Problem p = problem_of(layout, cu, H, N, dp, scale);

  const Tensor out_padded = Tensor::empty({H, N, dp}, DType::Float32, device);
  const Tensor lse = Tensor::empty({H, N}, DType::Float32, device);  // every row is written
  fa::forward_fp32(p, q.data<float>(), k.data<float>(), v.data<float>(), out_padded.data<float>(), lse.data<float>());
  Tensor out = unpad_head_dim(out_padded, d);

  autograd::record(
      deterministic ? "fused_attention_deterministic" : "fused_attention", {q_in, k_in, v_in}, out,
      [q = q.detach(), k = k.detach(), v = v.detach(), o = out_padded.detach(), lse, cu, p, d, dp,
       deterministic](const Tensor& g) -> std::vector<Tensor> {
        check_gradient_device(g, q);
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

// bf16 / fp16: rung 6 between fp32 tensors (see the header: what is rounded where).
Tensor fused_attention_half(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const nn::TokenLayout& layout,
                            double scale, fa::HalfType type) {
  const Device device = q_in.device();
  const int64_t H = q_in.size(0), N = q_in.size(1), d = q_in.size(2), dp = padded_head_dim(d);
  const Shape padded{H, N, dp};
  if (autograd::grad_enabled() && (q_in.requires_grad() || k_in.requires_grad() || v_in.requires_grad())) {
    check_half_backward_fits(static_cast<int>(dp), device.index);  // fail now, not after the forward pass
  }
  const Tensor q = rounded(pad_head_dim(q_in, dp), type), k = rounded(pad_head_dim(k_in, dp), type),
               v = rounded(pad_head_dim(v_in, dp), type);
  const Tensor cu = layout.cu_seqlens_on(device);  // int32 [B + 1], uploaded once per layout
  const fa::Problem p = problem_of(layout, cu, H, N, dp, scale);

  const Tensor o = half_buffer(H * N * dp, device);
  const Tensor lse = Tensor::empty({H, N}, DType::Float32, device);
  fa::forward_half(p, type, q.data<uint8_t>(), k.data<uint8_t>(), v.data<uint8_t>(), o.data<uint8_t>(),
                   lse.data<float>());
  Tensor out = unpad_head_dim(widened(o, padded, type, device), d);

  autograd::record(
      type == fa::HalfType::BFloat16 ? "fused_attention_bf16" : "fused_attention_fp16", {q_in, k_in, v_in}, out,
      [q, k, v, o, lse, cu, p, d, dp, padded, type](const Tensor& g) -> std::vector<Tensor> {
        check_gradient_device(g, lse);
        DeviceGuard guard(lse.device().index);
        const Device dev = lse.device();
        const Tensor dout = rounded(pad_head_dim(ops::to_dtype(g, DType::Float32), dp), type);
        const int64_t elements = padded[0] * padded[1] * padded[2];
        const Tensor dk = half_buffer(elements, dev), dv = half_buffer(elements, dev);
        const Tensor dq = Tensor::empty(padded, DType::Float32, dev);  // dQ's fp32 accumulator: the result
        const Tensor delta = Tensor::empty({padded[0], padded[1]}, DType::Float32, dev);
        (void)cu;  // keeps cu_seqlens (p.cu_seqlens points into it) alive as long as this node
        fa::backward_half(p, type, q.data<uint8_t>(), k.data<uint8_t>(), v.data<uint8_t>(), o.data<uint8_t>(),
                          lse.data<float>(), dout.data<uint8_t>(), /*dq=*/nullptr, dk.data<uint8_t>(),
                          dv.data<uint8_t>(), delta.data<float>(), dq.data<float>());
        return {unpad_head_dim(dq, d), unpad_head_dim(widened(dk, padded, type, dev), d),
                unpad_head_dim(widened(dv, padded, type, dev), d)};
      });
  return out;
}

}  // namespace

Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const nn::TokenLayout& layout, double scale,
                       FusedAttentionOptions options) {
  check_inputs(q, k, v, layout);
  if (options.deterministic && options.precision != AttentionPrecision::Float32) {
    throw std::invalid_argument(
        "fused attention (CUDA): the deterministic backward exists in fp32 only (the bf16/fp16 backward sums dQ "
        "with atomics)");
  }
  DeviceGuard guard(q.device().index);
  switch (options.precision) {
    case AttentionPrecision::BFloat16: return fused_attention_half(q, k, v, layout, scale, fa::HalfType::BFloat16);
    case AttentionPrecision::Float16: return fused_attention_half(q, k, v, layout, scale, fa::HalfType::Float16);
    case AttentionPrecision::Float32: break;
  }
  return fused_attention_fp32(q, k, v, layout, scale, options.deterministic);
}

void register_fused_attention() {
  nn::register_attention_kernel("fused", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                            const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale);
  });
  nn::register_attention_kernel("fused_deterministic", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                                          const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale, FusedAttentionOptions{.deterministic = true});
  });
  nn::register_attention_kernel("fused_bf16", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale, FusedAttentionOptions{.precision = AttentionPrecision::BFloat16});
  });
  nn::register_attention_kernel("fused_fp16", [](const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const nn::TokenLayout& layout, double scale) {
    return fused_attention(q, k, v, layout, scale, FusedAttentionOptions{.precision = AttentionPrecision::Float16});
  });
}

namespace {
// Registers the kernels at start-up whenever this object file is part of the program.
[[maybe_unused]] const bool g_registered = (register_fused_attention(), true);
}  // namespace

}  // namespace glance::cuda
