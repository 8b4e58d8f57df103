// The CUDA backend's attention (Backend::attention_forward / backward): the fused kernels of
// fused_attention.h (rungs 3-6 of docs/09) on glance tensors. No autograd here: nn records the node
// (nn::backend_attention, nn/attention/kernel.cpp) and calls attention_backward with what the forward saved.
//
//   q, k, v: [H, N_total, d] float32 on cuda:N, packed per clips.cu_seqlens -> out [H, N_total, d] float32
//
//   precision Full, deterministic false   fp32 (rungs 3 and 4); dQ by atomics, FlashAttention-2's default
//   precision Full, deterministic true    fp32; dQ by a second kernel, the same bits every run
//   precision BFloat16                    q, k, v rounded to bf16, the tensor-core kernels (rung 6), fp32 out
//   precision Float16                     the same in fp16 (train with loss scaling: nn/optim/loss_scaler.h)
//
// Forward: saves what the backward needs (the inputs as the kernels saw them, O and the row logsumexp,
// [H, N_total] fp32). Head dims other than 32, 64, 128 (up to 128) are zero-padded to the next of those:
// zero columns change no score, the padded output columns are 0 and are cut off again (at the cost of a
// copy of q, k, v, and of the output and its gradients). Above 128: an error.
//
// Mixed precision (bf16 / fp16): the tensors stay fp32 everywhere else in the model (parameters, the
// linear layers, LayerNorm, the optimizer: "fp32 master weights"); only the attention core runs in 16 bits.
// Forward: q, k, v are rounded (half_cast.cu), forward_half computes O (rounded) and lse (fp32), O is
// widened back to fp32. Backward: the incoming gradient is rounded, backward_half computes dK, dV (rounded)
// and dQ (summed in fp32; taken from that accumulator unrounded), and all three are widened. The rounding of
// the incoming gradient is where fp16 loses small gradients (below ~6e-8 they become 0): hence loss scaling.
// glance tensors have no 16-bit dtype, so the 16-bit copies are held as uint8 tensors of 2 bytes per element,
// which only these kernels read.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/attention/fused_attention.h"
#include "cuda/cuda_backend.h"
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

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionClips& clips) {
  const std::string op = "fused attention (CUDA)";
  const int64_t tokens = clips.offsets.empty() ? 0 : clips.offsets.back();
  const int64_t batch = static_cast<int64_t>(clips.offsets.size()) - 1;
  if (!q.device().is_cuda()) {
    throw std::invalid_argument(op + ": q is on " + q.device().str() +
                                "; this kernel runs on a CUDA device: move q, k, v there (ops::to_device), or use "
                                "the \"tiled\" kernel on the CPU");
  }
  if (k.device() != q.device() || v.device() != q.device()) {
    throw std::invalid_argument(op + ": q, k, v must be on one device, got " + q.device().str() + ", " +
                                k.device().str() + ", " + v.device().str());
  }
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != tokens) {
    throw std::invalid_argument(op + ": expected q, k, v of one shape [H, " + std::to_string(tokens) +
                                ", d], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                                shape_str(v.shape()));
  }
  if (q.dtype() != DType::Float32 || k.dtype() != DType::Float32 || v.dtype() != DType::Float32) {
    throw std::invalid_argument(op + ": expected float32 q, k, v, got " + dtype_name(q.dtype()) + ", " +
                                dtype_name(k.dtype()) + ", " + dtype_name(v.dtype()) +
                                " (bf16/fp16 attention takes float32 tensors too: the kernels \"fused_bf16\" / \"fused_fp16\")");
  }
  const int64_t d = q.size(2);
  if (d < 1 || padded_head_dim(d) == 0) {
    throw std::invalid_argument(op + ": head dim " + std::to_string(d) +
                                " is not supported: the kernels have head dims 32, 64, 128 (smaller ones are "
                                "zero-padded up to those), nothing above 128");
  }
  if (q.size(0) > 65535 || batch > 65535 || q.size(1) > INT32_MAX) {
    throw std::invalid_argument(op + ": at most 65535 heads, 65535 clips and 2^31 - 1 tokens, got " +
                                std::to_string(q.size(0)) + " heads, " + std::to_string(batch) +
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

fa::Problem problem_of(const AttentionClips& clips, int64_t H, int64_t N, int64_t dp, double scale) {
  if (!clips.cu_seqlens.defined() || clips.cu_seqlens.dtype() != DType::Int32 ||
      clips.cu_seqlens.numel() != static_cast<int64_t>(clips.offsets.size()) || clips.cu_seqlens.device().is_cpu()) {
    throw std::invalid_argument("fused attention (CUDA): expected the clips' cu_seqlens as int32 [B + 1] on the GPU");
  }
  int64_t max_len = 0;
  for (size_t b = 0; b + 1 < clips.offsets.size(); ++b) max_len = std::max(max_len, clips.offsets[b + 1] - clips.offsets[b]);
  fa::Problem p;
  p.heads = static_cast<int>(H);
  p.total_tokens = N;
  p.head_dim = static_cast<int>(dp);
  p.batch = static_cast<int>(clips.offsets.size()) - 1;
  p.max_len = static_cast<int>(max_len);
  p.cu_seqlens = clips.cu_seqlens.data<int32_t>();
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

// The saved tensors of each path (AttentionForwardResult::saved).
enum Saved { kQ, kK, kV, kOut, kLse };  // fp32: padded q, k, v, out; half: their 16-bit copies; lse fp32

// fp32: rungs 3 and 4.
AttentionForwardResult forward_fp32(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionClips& clips,
                                    double scale) {
  const Device device = q_in.device();
  const int64_t H = q_in.size(0), N = q_in.size(1), d = q_in.size(2), dp = padded_head_dim(d);
  const Tensor q = pad_head_dim(q_in, dp), k = pad_head_dim(k_in, dp), v = pad_head_dim(v_in, dp);
  const fa::Problem p = problem_of(clips, H, N, dp, scale);
  const Tensor out_padded = Tensor::empty({H, N, dp}, DType::Float32, device);
  const Tensor lse = Tensor::empty({H, N}, DType::Float32, device);  // every row is written
  fa::forward_fp32(p, q.data<float>(), k.data<float>(), v.data<float>(), out_padded.data<float>(), lse.data<float>());
  return {unpad_head_dim(out_padded, d), {q, k, v, out_padded, lse}};
}

AttentionGradients backward_fp32(const Tensor& g, const AttentionForwardResult& forward, const AttentionClips& clips,
                                 int64_t d, double scale, bool deterministic) {
  const Tensor &q = forward.saved.at(kQ), &k = forward.saved.at(kK), &v = forward.saved.at(kV),
               &o = forward.saved.at(kOut), &lse = forward.saved.at(kLse);
  const Shape shape = q.shape();
  const fa::Problem p = problem_of(clips, shape[0], shape[1], shape[2], scale);
  const Tensor dout = pad_head_dim(ops::to_dtype(g, DType::Float32), shape[2]);
  const Tensor dq = Tensor::empty(shape, DType::Float32, q.device());
  const Tensor dk = Tensor::empty(shape, DType::Float32, q.device());
  const Tensor dv = Tensor::empty(shape, DType::Float32, q.device());
  const Tensor delta = Tensor::empty({shape[0], shape[1]}, DType::Float32, q.device());
  fa::backward_fp32(p, q.data<float>(), k.data<float>(), v.data<float>(), o.data<float>(), lse.data<float>(),
                    dout.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(), delta.data<float>(),
                    deterministic);
  return {unpad_head_dim(dq, d), unpad_head_dim(dk, d), unpad_head_dim(dv, d)};
}

// bf16 / fp16: rung 6 between fp32 tensors (see the top of this file: what is rounded where).
AttentionForwardResult forward_half(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionClips& clips,
                                    double scale, fa::HalfType type, bool backward_follows) {
  const Device device = q_in.device();
  const int64_t H = q_in.size(0), N = q_in.size(1), d = q_in.size(2), dp = padded_head_dim(d);
  if (backward_follows) check_half_backward_fits(static_cast<int>(dp), device.index);  // fail now, not after
  const Tensor q = rounded(pad_head_dim(q_in, dp), type), k = rounded(pad_head_dim(k_in, dp), type),
               v = rounded(pad_head_dim(v_in, dp), type);
  const fa::Problem p = problem_of(clips, H, N, dp, scale);
  const Tensor o = half_buffer(H * N * dp, device);
  const Tensor lse = Tensor::empty({H, N}, DType::Float32, device);
  fa::forward_half(p, type, q.data<uint8_t>(), k.data<uint8_t>(), v.data<uint8_t>(), o.data<uint8_t>(),
                   lse.data<float>());
  return {unpad_head_dim(widened(o, Shape{H, N, dp}, type, device), d), {q, k, v, o, lse}};
}

AttentionGradients backward_half(const Tensor& g, const AttentionForwardResult& forward, const AttentionClips& clips,
                                 int64_t d, double scale, fa::HalfType type) {
  const Tensor &q = forward.saved.at(kQ), &k = forward.saved.at(kK), &v = forward.saved.at(kV),
               &o = forward.saved.at(kOut), &lse = forward.saved.at(kLse);
  const Device dev = lse.device();
  const int64_t H = lse.size(0), N = lse.size(1), dp = padded_head_dim(d);
  const Shape padded{H, N, dp};
  const fa::Problem p = problem_of(clips, H, N, dp, scale);
  const Tensor dout = rounded(pad_head_dim(ops::to_dtype(g, DType::Float32), dp), type);
  const Tensor dk = half_buffer(H * N * dp, dev), dv = half_buffer(H * N * dp, dev);
  const Tensor dq = Tensor::empty(padded, DType::Float32, dev);  // dQ's fp32 accumulator: the result
  const Tensor delta = Tensor::empty({H, N}, DType::Float32, dev);
  fa::backward_half(p, type, q.data<uint8_t>(), k.data<uint8_t>(), v.data<uint8_t>(), o.data<uint8_t>(),
                    lse.data<float>(), dout.data<uint8_t>(), /*dq=*/nullptr, dk.data<uint8_t>(), dv.data<uint8_t>(),
                    delta.data<float>(), dq.data<float>());
  return {unpad_head_dim(dq, d), unpad_head_dim(widened(dk, padded, type, dev), d),
          unpad_head_dim(widened(dv, padded, type, dev), d)};
}

fa::HalfType half_type(AttentionPrecision precision) {
  return precision == AttentionPrecision::BFloat16 ? fa::HalfType::BFloat16 : fa::HalfType::Float16;
}

}  // namespace

AttentionForwardResult CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                      const AttentionClips& clips, const AttentionOptions& options) {
  check_inputs(q, k, v, clips);
  if (options.deterministic && options.precision != AttentionPrecision::Full) {
    throw std::invalid_argument(
        "fused attention (CUDA): the deterministic backward exists in fp32 only (the bf16/fp16 backward sums dQ "
        "with atomics)");
  }
  DeviceGuard guard(q.device().index);
  if (options.precision == AttentionPrecision::Full) return forward_fp32(q, k, v, clips, options.scale);
  return forward_half(q, k, v, clips, options.scale, half_type(options.precision), options.backward_follows);
}

AttentionGradients CudaBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                   const Tensor& v, const AttentionForwardResult& forward,
                                                   const AttentionClips& clips, const AttentionOptions& options) {
  check_gradient_device(dout, q);
  DeviceGuard guard(q.device().index);
  if (options.precision == AttentionPrecision::Full) {
    return backward_fp32(dout, forward, clips, q.size(2), options.scale, options.deterministic);
  }
  return backward_half(dout, forward, clips, q.size(2), options.scale, half_type(options.precision));
}

}  // namespace glance::cuda
