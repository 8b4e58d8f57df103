// Differentiable views and copies. A view's backward puts the gradient back into the input's layout:
// reshape it back, permute it back, or place it inside zeros where the view took a slice.
#include "autograd/functions.h"

namespace glance {

using autograd::record;

namespace {

// The backward of every "take part of x" view: zeros of x's shape with g written where the view was.
// `take` maps a tensor of x's shape to the same view of it.
template <typename Take>
std::vector<Tensor> place_into_zeros(const Tensor& g, const Shape& shape, DType dtype, Device device, Take take) {
  Tensor gx = ops::zeros(shape, dtype, device);
  ops::copy_(take(gx), g);
  return {gx};
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  Tensor out = ops::view(x, shape);
  record("view", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::reshape(g, sx)}; });
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = ops::reshape(x, shape);
  record("reshape", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::reshape(g, sx)}; });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  Tensor out = ops::permute(x, order);
  record("permute", {x}, out, [order, n = x.dim()](const Tensor& g) -> std::vector<Tensor> {
    std::vector<int64_t> inverse(order.size());
    for (size_t i = 0; i < order.size(); ++i) inverse[normalize_axis(order[i], n, "permute")] = static_cast<int64_t>(i);
    return {ops::permute(g, inverse)};
  });
  return out;
}

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  Tensor out = ops::transpose(x, axis0, axis1);
  record("transpose", {x}, out, [axis0, axis1](const Tensor& g) -> std::vector<Tensor> {
    return {ops::transpose(g, axis0, axis1)};
  });
  return out;
}

Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length) {
  Tensor out = ops::narrow(x, axis, start, length);
  record("narrow", {x}, out, [sx = x.shape(), dt = x.dtype(), dev = x.device(), axis, start, length](const Tensor& g) {
    return place_into_zeros(g, sx, dt, dev, [&](const Tensor& t) { return ops::narrow(t, axis, start, length); });
  });
  return out;
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  Tensor out = ops::slice(x, axis, start, end, step);
  record("slice", {x}, out, [sx = x.shape(), dt = x.dtype(), dev = x.device(), axis, start, end, step](const Tensor& g) {
    return place_into_zeros(g, sx, dt, dev, [&](const Tensor& t) { return ops::slice(t, axis, start, end, step); });
  });
  return out;
}

Tensor select(const Tensor& x, int64_t axis, int64_t index) {
  Tensor out = ops::select(x, axis, index);
  record("select", {x}, out, [sx = x.shape(), dt = x.dtype(), dev = x.device(), axis, index](const Tensor& g) {
    return place_into_zeros(g, sx, dt, dev, [&](const Tensor& t) { return ops::select(t, axis, index); });
  });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = ops::expand(x, shape);
  // Every copy made by stretching receives gradient: sum them back.
  record("expand", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::sum_to(g, sx)}; });
  return out;
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  Tensor out = ops::squeeze(x, axis);
  record("squeeze", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::reshape(g, sx)}; });
  return out;
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  Tensor out = ops::unsqueeze(x, axis);
  record("unsqueeze", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::reshape(g, sx)}; });
  return out;
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  Tensor out = ops::flatten(x, start_axis, end_axis);
  record("flatten", {x}, out, [sx = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {ops::reshape(g, sx)}; });
  return out;
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = ops::contiguous(x);
  record("contiguous", {x}, out, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return out;
}

Tensor clone(const Tensor& x) {
  Tensor out = ops::clone(x);
  record("clone", {x}, out, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return out;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = ops::to_dtype(x, dtype);
  if (!is_floating(dtype)) return out;  // integers carry no gradient
  record("to_dtype", {x}, out, [dt = x.dtype()](const Tensor& g) -> std::vector<Tensor> { return {ops::to_dtype(g, dt)}; });
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  Tensor out = ops::to_device(x, device);
  record("to_device", {x}, out, [dev = x.device()](const Tensor& g) -> std::vector<Tensor> {
    return {ops::to_device(g, dev)};
  });
  return out;
}

}  // namespace glance
