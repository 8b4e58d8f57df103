// Matrix multiply, softmax and layer norm, with their backward rules.
#include "autograd/functions.h"

namespace glance {

using autograd::record;

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::matmul(a, b);
  // For C = A B:  dA = dC B^T,  dB = A^T dC. Vectors are promoted to matrices as in the forward
  // (a row [1, K], a column [K, 1]); broadcast batch axes are summed back by sum_to.
  record("matmul", {a, b}, out, [a, b](const Tensor& g) -> std::vector<Tensor> {
    Tensor a2 = a.dim() == 1 ? ops::unsqueeze(a, 0) : a;
    Tensor b2 = b.dim() == 1 ? ops::unsqueeze(b, 1) : b;
    Shape g_shape = g.shape();
    if (a.dim() == 1) g_shape.insert(g_shape.end() - (b.dim() == 1 ? 0 : 1), 1);
    if (b.dim() == 1) g_shape.push_back(1);
    Tensor g2 = ops::reshape(g, g_shape);
    Tensor ga, gb;
    if (a.requires_grad()) {
      ga = ops::reshape(ops::sum_to(ops::matmul(g2, ops::transpose(b2, -1, -2)), a2.shape()), a.shape());
    }
    if (b.requires_grad()) {
      gb = ops::reshape(ops::sum_to(ops::matmul(ops::transpose(a2, -1, -2), g2), b2.shape()), b.shape());
    }
    return {ga, gb};
  });
  return out;
}

// Kernels of softmax, log_softmax and their backward (Backend::softmax, softmax_backward): the CPU's in
// tensor/cpu/rows.cpp, CUDA's in cuda/rows.cu.
Tensor softmax(const Tensor& x, int64_t axis) {
  Tensor out = ops::softmax(x, axis);
  // y = softmax(x):  dx = y * (g - sum(g * y))  along the axis
  record("softmax", {x}, out, [axis, y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::softmax_backward(y, g, axis, false)};
  });
  return out;
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  Tensor out = ops::log_softmax(x, axis);
  // y = x - logsumexp(x):  dx = g - softmax(x) * sum(g)  along the axis
  record("log_softmax", {x}, out, [axis, y = out.detach()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::softmax_backward(y, g, axis, true)};
  });
  return out;
}

// Kernels (Backend::layer_norm_forward, layer_norm_backward): the CPU's in tensor/cpu/rows.cpp, CUDA's in
// cuda/rows.cu with cuda/layer_norm_row.cuh (the fused residual + LayerNorm: Backend::residual_layer_norm).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  ops::LayerNormResult r = ops::layer_norm(x, weight, bias, eps);
  Tensor out = r.out;
  record_layer_norm(x, weight, bias, out, r.mean, r.rstd);
  return out;
}

void record_layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out, const Tensor& mean,
                       const Tensor& rstd) {
  // The backend computes all three gradients in one pass over the rows (tensor/cpu/rows.cpp).
  record("layer_norm", {x, weight, bias}, out, [x, weight, bias, mean, rstd](const Tensor& g) -> std::vector<Tensor> {
    bool affine = (weight.defined() && weight.requires_grad()) || (bias.defined() && bias.requires_grad());
    ops::LayerNormGrads d = ops::layer_norm_backward(g, x, mean, rstd, weight, affine);
    return {d.dx, weight.defined() ? d.dweight : Tensor(), bias.defined() ? d.dbias : Tensor()};
  });
}

}  // namespace glance
