// Fused CUDA kernels for the nn layer: each does in one pass over memory what a composition of primitives
// does in several, where that pays. They work on CUDA tensors of float32 or float64 and record no autograd
// history. They are the CUDA backend's fused ops (Backend::bias_gelu etc., overridden at the end of fused.cu);
// nn reaches them through the Backend (nn/fused.h), which records the autograd nodes.
//
// Why these four: on a GPU the ops around a GEMM are limited by memory traffic, not arithmetic. Each unfused
// elementwise step reads its inputs from device memory and writes its output back; fusing a chain of k steps
// saves about k - 1 round trips of the whole tensor.
//
//   bias_gelu             out = gelu(x + b)            the MLP's first layer after its GEMM: 1 pass instead of 2
//                                                      (the x + b tensor never exists)
//   residual_layer_norm   s = x + r, y = LN(s)         a transformer block's "add & norm": 1 kernel instead of 2
//                                                      (the add's output is written once, for the next residual)
//   softmax_cross_entropy loss and dlogits per row     log_softmax + gather + neg + the backward's
//                                                      softmax - onehot: one kernel, two passes over a row
//   adamw_step            m, v, p updated in place     AdamW as written in nn/optim/adamw.cpp is ~10 elementwise
//                                                      ops, each a full pass; here one read and one write of
//                                                      p, g, m, v
#pragma once
#include <cstdint>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace glance::cuda {

// out = gelu(x + bias) with the exact (erf) GELU. x: [..., C], bias: [C]; out has x's shape.
Tensor bias_gelu(const Tensor& x, const Tensor& bias);
// Its backward for x (and, summed over the rows by the caller, for bias): dx = dy * gelu'(x + bias), the
// pre-activation recomputed rather than stored.
Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias);

// The result and parameter types are the Backend's (tensor/backend.h).
using glance::AdamWParams;
using glance::ResidualLayerNormResult;
using glance::SoftmaxCrossEntropyResult;

// weight and bias ([C]) may be undefined (no affine). The backward is the ordinary layer_norm_backward on `sum`.
ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                            const Tensor& bias, double eps = 1e-5);

// logits [N, C] (float), labels [N] (int64, on the GPU or the CPU), label smoothing s in [0, 1] as in
// nn::cross_entropy: loss_i = (1 - s) (-log p_i[label_i]) - s mean_j log p_i[j]. A label outside [0, C) is
// not read: its row gets a NaN loss and NaN gradients (so the mistake shows) rather than a wild memory read.
SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                double label_smoothing = 0.0);

// One AdamW step on one parameter, in place, exactly the update of nn/optim/adamw.cpp:
//   p = p * (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p = p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
// param, grad, m, v: contiguous CUDA tensors of one shape and floating dtype.
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWParams& p);

}  // namespace glance::cuda
