// The CPU backend's attention (Backend::attention_forward / backward): one of two kernels, chosen by the
// longest clip of the pack.
//
//   longest clip < kTiledFromTokens   materialised scores, equal-length clips batched, batches spread over
//                                     the threads (attention_materialised.cpp)
//   otherwise                         the tiled kernel (attention_tiled.cpp): O(N) extra memory instead of
//                                     O(H L^2), and faster from about a thousand tokens per clip
//
// The backward takes the kernel the forward took: what the forward saved tells them apart (the tiled kernel
// saves one [H, N] log-sum-exp, the materialised one a [H, count, n, n] probability tensor per run).
#include <algorithm>
#include <stdexcept>

#include "tensor/cpu/attention.h"
#include "tensor/cpu/cpu_backend.h"
#include "tensor/counters.h"
#include "tensor/op_profile.h"

namespace glance {

namespace {

void require_full_precision_on_cpu(const AttentionOptions& options) {
  if (options.precision != AttentionPrecision::Full) {
    throw std::invalid_argument("attention on the CPU: the kernels compute in the inputs' dtype (float32 or "
                                "float64); bf16/fp16 attention needs a CUDA device");
  }
}

int64_t longest_clip(const std::vector<int64_t>& offsets) {
  int64_t longest = 0;
  for (size_t b = 0; b + 1 < offsets.size(); ++b) longest = std::max(longest, offsets[b + 1] - offsets[b]);
  return longest;
}

bool tiled_for(const std::vector<int64_t>& offsets) { return longest_clip(offsets) >= cpu::kTiledFromTokens; }

// The tiled kernel calls its GEMM directly, so it adds its products to the matmul counter (tensor/counters.h)
// itself: per clip and head, the forward's two L x L x d products, the backward's four (dV, dP, dQ, dK; the
// recomputed scores are not counted, as the materialised kernel does not compute them twice).
int64_t tiled_product_flops(const Tensor& q, const std::vector<int64_t>& offsets, int64_t products) {
  int64_t squares = 0;
  for (size_t b = 0; b + 1 < offsets.size(); ++b) squares += (offsets[b + 1] - offsets[b]) * (offsets[b + 1] - offsets[b]);
  return products * 2 * q.size(0) * squares * q.size(2);
}

}  // namespace

AttentionForwardResult CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                     const AttentionClips& clips, const AttentionOptions& options) {
  const op_profile::Scope profile_scope(OpKind::Attention);
  require_full_precision_on_cpu(options);
  if (tiled_for(clips.offsets)) {
    AttentionForwardResult r = cpu::tiled_attention_forward(q, k, v, clips.offsets, options.scale);
    counters::on_matmul(tiled_product_flops(q, clips.offsets, 2));
    return r;
  }
  cpu::check_attention_inputs(q, k, v, clips.offsets);
  return cpu::materialised_attention_forward(q, k, v, clips.offsets, options.scale);
}

AttentionGradients CpuBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                  const Tensor& v, const AttentionForwardResult& forward,
                                                  const AttentionClips& clips, const AttentionOptions& options) {
  const op_profile::Scope profile_scope(OpKind::Attention);
  require_full_precision_on_cpu(options);
  if (tiled_for(clips.offsets)) {
    AttentionGradients g = cpu::tiled_attention_backward(dout, q, k, v, forward, clips.offsets, options.scale);
    counters::on_matmul(tiled_product_flops(q, clips.offsets, 4));
    return g;
  }
  return cpu::materialised_attention_backward(dout, q, k, v, forward, clips.offsets, options.scale);
}

}  // namespace glance
