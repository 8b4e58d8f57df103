#include "nn/fused.h"

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace glance::nn {

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
// One table per device type. Registration happens at start-up (static initialisers) or in tests; the autograd
// nodes below copy the function they need, so replacing a table never leaves a node pointing at a dead one.
std::map<DeviceType, FusedKernels>& registry() {
  static std::map<DeviceType, FusedKernels> r;
  return r;
}
std::atomic<bool> g_enabled{true};

}  // namespace

void register_fused_kernels(DeviceType type, FusedKernels kernels) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  const bool empty =
      !kernels.softmax_cross_entropy && !kernels.bias_gelu && !kernels.adamw_step && !kernels.residual_layer_norm;
  if (empty) {
    registry().erase(type);
  } else {
    registry()[type] = std::move(kernels);
  }
}

const FusedKernels* fused_kernels(Device device) {
  if (!g_enabled.load()) return nullptr;
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(device.type);
  return it == registry().end() ? nullptr : &it->second;
}

void set_fusion_enabled(bool on) { g_enabled.store(on); }
bool fusion_enabled() { return g_enabled.load(); }

Tensor fused_bias_gelu(const FusedKernels& kernels, const Tensor& x, const Tensor& bias) {
  if (!kernels.bias_gelu || !kernels.bias_gelu_backward) {
    throw std::logic_error("fused_bias_gelu: the device registered no bias_gelu kernel");
  }
  Tensor out = kernels.bias_gelu(x.detach(), bias.detach());
  autograd::record("bias_gelu", {x, bias}, out,
                   [backward = kernels.bias_gelu_backward, x = x.detach(), bias = bias.detach()](const Tensor& g)
                       -> std::vector<Tensor> {
                     const Tensor dx = backward(g, x, bias);
                     return {dx, ops::sum_to(dx, bias.shape())};  // the bias was broadcast over the rows
                   });
  return out;
}

Tensor fused_cross_entropy_mean(const FusedKernels& kernels, const Tensor& logits, const Tensor& labels,
                                double label_smoothing) {
  if (!kernels.softmax_cross_entropy) {
    throw std::logic_error("fused_cross_entropy_mean: the device registered no softmax_cross_entropy kernel");
  }
  const auto [loss_rows, dlogits] = kernels.softmax_cross_entropy(logits.detach(), labels, label_smoothing);
  Tensor loss = ops::mean(loss_rows);  // a scalar
  const double rows = static_cast<double>(logits.size(0));
  autograd::record("cross_entropy_fused", {logits}, loss,
                   [dlogits = dlogits, rows](const Tensor& g) -> std::vector<Tensor> {
                     // d mean / d loss_i = 1 / N for every row; g is the scalar upstream gradient.
                     return {ops::binary(BinaryOp::Mul, dlogits, ops::binary(BinaryOp::Div, g, rows))};
                   });
  return loss;
}

std::pair<Tensor, Tensor> fused_residual_layer_norm(const FusedKernels& kernels, const Tensor& x,
                                                    const Tensor& residual, const Tensor& weight,
                                                    const Tensor& bias, double eps) {
  if (!kernels.residual_layer_norm) {
    throw std::logic_error("fused_residual_layer_norm: the device registered no residual_layer_norm kernel");
  }
  auto detached = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };  // no affine: undefined
  ResidualLayerNormValues v =
      kernels.residual_layer_norm(x.detach(), residual.detach(), detached(weight), detached(bias), eps);
  // s = x + residual: ds/dx = ds/dresidual = identity (same shapes: no broadcast to undo).
  autograd::record("add", {x, residual}, v.sum,
                   [](const Tensor& g) -> std::vector<Tensor> { return {g, g}; });
  // out = LN(s): layer_norm's own backward, from the kernel's row statistics. Its input is s with the add's
  // history, so the gradient reaching s from both of its consumers (this LN and the next residual) is summed
  // before the add passes it on.
  record_layer_norm(v.sum, weight, bias, v.out, v.mean, v.rstd);
  return {v.sum, v.out};
}

}  // namespace glance::nn
