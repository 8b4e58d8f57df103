// The differentiable functions: glance's public op API. Each computes its result with the plain math
// of tensor/ops.h and, when an input requires grad, records a Node whose backward rule sits right next
// to the forward in autograd/functions/*.cpp.
//
//   Tensor w = glance::randn({3, 2}).set_requires_grad();
//   Tensor loss = glance::sum(glance::relu(glance::matmul(x, w)));
//   loss.backward();   // w.grad() now holds d loss / d w
#pragma once
#include <vector>

#include "autograd/node.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace glance {

// Creation and the non-differentiable ops are the tensor layer's, re-exported here.
using ops::arange;
using ops::argmax;
using ops::argmin;
using ops::empty;
using ops::eye;
using ops::from_vector;
using ops::full;
using ops::full_like;
using ops::ones;
using ops::ones_like;
using ops::scalar;
using ops::zeros;
using ops::zeros_like;
using ops::rand;
using ops::randn;
using ops::uniform;
using ops::normal;
using ops::trunc_normal;
using ops::bernoulli;
using ops::randint;
using ops::randperm;

// ---- elementwise (broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send half the gradient each way, like torch
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);       // exact form: x * Phi(x) with the normal CDF (erf)
Tensor gelu_tanh(const Tensor& x);  // tanh approximation (GPT-2, BERT's original code)
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// Comparisons give Bool tensors and no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);

// ---- reductions (empty `axes` means all axes) ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);  // ties share the gradient
Tensor min(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor var(const Tensor& x, const std::vector<int64_t>& axes = {}, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- views and copies ----
Tensor view(const Tensor& x, const Shape& shape);
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t axis, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);
Tensor to_device(const Tensor& x, Device device);

// ---- linear algebra and rows ----
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// Normalises over the last axis; weight and bias ([C]) may be undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// layer_norm's node for a forward computed elsewhere (nn's fused residual + LayerNorm kernel): records on `out`
// = LN(x) * weight + bias the backward of layer_norm, from the row statistics mean and rstd ([rows] or x's
// shape without its last axis) that produced it.
void record_layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out, const Tensor& mean,
                       const Tensor& rstd);

// ---- joining, splitting, indexing ----
Tensor concat(const std::vector<Tensor>& tensors, int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t axis = 0);
std::vector<Tensor> split(const Tensor& x, int64_t piece_size, int64_t axis = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);
// The index may live on another device than x (e.g. built on the host for a GPU tensor): it is checked where it
// is and moved to x's device once, for the forward and the backward. IndexCheck::AlreadyChecked: the caller
// vouches that the index is in bounds (ops.h), e.g. an index already on x's device that was checked on the
// host, so it is not read back for the check.
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index,
                    ops::IndexCheck check = ops::IndexCheck::Bounds);
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index, ops::IndexCheck check = ops::IndexCheck::Bounds);
Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src,
                   ops::IndexCheck check = ops::IndexCheck::Bounds);

}  // namespace glance
