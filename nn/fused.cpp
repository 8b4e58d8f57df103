#include "nn/fused.h"

#include <atomic>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace glance::nn {

namespace {
std::atomic<bool> g_enabled{true};
}  // namespace

Backend* fused_backend(Device device, FusedOp op) {
  if (!g_enabled.load()) return nullptr;
  Backend& backend = backend_for(device);
  return backend.has_fused(op) ? &backend : nullptr;
}

void set_fusion_enabled(bool on) { g_enabled.store(on); }
bool fusion_enabled() { return g_enabled.load(); }

Tensor fused_bias_gelu(Backend& backend, const Tensor& x, const Tensor& bias) {
  Tensor out = backend.bias_gelu(x.detach(), bias.detach());
  autograd::record("bias_gelu", {x, bias}, out,
                   [&backend, x = x.detach(), bias = bias.detach()](const Tensor& g) -> std::vector<Tensor> {
                     const Tensor dx = backend.bias_gelu_backward(g, x, bias);
                     return {dx, ops::sum_to(dx, bias.shape())};  // the bias was broadcast over the rows
                   });
  return out;
}

Tensor fused_cross_entropy_mean(Backend& backend, const Tensor& logits, const Tensor& labels, double label_smoothing) {
  const auto [loss_rows, dlogits] = backend.softmax_cross_entropy(logits.detach(), labels, label_smoothing);
  Tensor loss = ops::mean(loss_rows);  // a scalar
  const double rows = static_cast<double>(logits.size(0));
  autograd::record("cross_entropy_fused", {logits}, loss,
                   [dlogits = dlogits, rows](const Tensor& g) -> std::vector<Tensor> {
                     // d mean / d loss_i = 1 / N for every row; g is the scalar upstream gradient.
                     return {ops::binary(BinaryOp::Mul, dlogits, ops::binary(BinaryOp::Div, g, rows))};
                   });
  return loss;
}

std::pair<Tensor, Tensor> fused_residual_layer_norm(Backend& backend, const Tensor& x,
                                                    const Tensor& residual, const Tensor& weight,
                                                    const Tensor& bias, double eps) {
  auto detached = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };  // no affine: undefined
  ResidualLayerNormResult v =
      backend.residual_layer_norm(x.detach(), residual.detach(), detached(weight), detached(bias), eps);
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
