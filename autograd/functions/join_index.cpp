// Joining, splitting and indexing, with their backward rules.
#include "autograd/functions.h"

namespace glance {

using autograd::record;

Tensor concat(const std::vector<Tensor>& tensors, int64_t axis) {
  Tensor out = ops::concat(tensors, axis);
  // Each input's gradient is its slab of the output's gradient.
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) sizes.push_back(t.size(axis));
  record("concat", tensors, out, [sizes, axis](const Tensor& g) { return ops::split(g, sizes, axis); });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t axis) {
  std::vector<Tensor> lifted;
  int64_t a = tensors.empty() ? 0 : normalize_axis(axis, tensors[0].dim() + 1, "stack");
  for (const Tensor& t : tensors) lifted.push_back(unsqueeze(t, a));
  return concat(lifted, a);  // differentiable through unsqueeze and concat
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  std::vector<Tensor> pieces = ops::split(x, sizes, axis);  // checks the sizes
  int64_t at = 0;
  for (Tensor& piece : pieces) {
    int64_t n = piece.size(axis);
    piece = narrow(x, axis, at, n);  // each piece is a differentiable narrow view
    at += n;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t piece_size, int64_t axis) {
  std::vector<int64_t> sizes;
  for (const Tensor& p : ops::split(x, piece_size, axis)) sizes.push_back(p.size(axis));
  return split(x, sizes, axis);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  std::vector<int64_t> sizes;
  for (const Tensor& p : ops::chunk(x, chunks, axis)) sizes.push_back(p.size(axis));
  return split(x, sizes, axis);
}

namespace {
// The index of an indexing op on x's device, and the check the op still has to make. An index already there
// is left to the op (which checks shapes first, then bounds). A host index for a GPU tensor is checked on the
// host (where reading it is free) and moved to x's device once; that copy serves the forward and the backward.
// Moving it again in the backward, or checking the device copy (which reads it back), would make the host wait
// for the GPU's queue in the middle of the step.
struct IndexOnDevice {
  Tensor index;
  ops::IndexCheck check;
};
IndexOnDevice index_on_device(const Tensor& x, int64_t axis, const Tensor& index, ops::IndexCheck check,
                              const char* op) {
  if (index.device() == x.device()) return {index, check};
  if (check == ops::IndexCheck::Bounds) ops::check_index_bounds(index, x.shape()[normalize_axis(axis, x.dim(), op)], op);
  return {ops::to_device(index, x.device()), ops::IndexCheck::AlreadyChecked};
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index_in, ops::IndexCheck check) {
  const IndexOnDevice on_device = index_on_device(x, axis, index_in, check, "index_select");
  const Tensor index = on_device.index;  // what the backward keeps
  Tensor out = ops::index_select(x, axis, index, on_device.check);
  // Row i of the output came from row index[i]: add it back there (repeated indices add up).
  record("index_select", {x}, out, [x, axis, index](const Tensor& g) -> std::vector<Tensor> {
    int64_t a = normalize_axis(axis, x.dim(), "index_select");
    Shape lifted(x.dim(), 1);
    lifted[a] = index.numel();
    Tensor idx = ops::contiguous(ops::expand(ops::reshape(ops::to_dtype(index, DType::Int64), lifted), g.shape()));
    return {ops::scatter_add(ops::zeros_like(x), a, idx, ops::contiguous(g), ops::IndexCheck::AlreadyChecked)};
  });
  return out;
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index_in, ops::IndexCheck check) {
  const IndexOnDevice on_device = index_on_device(x, axis, index_in, check, "gather");
  const Tensor index = on_device.index;  // what the backward keeps
  Tensor out = ops::gather(x, axis, index, on_device.check);
  // out[.., i, ..] = x[.., index[.., i, ..], ..]: the gradient goes back to where each element was read.
  record("gather", {x}, out, [x, axis, index](const Tensor& g) -> std::vector<Tensor> {
    return {ops::scatter_add(ops::zeros_like(x), axis, index, g, ops::IndexCheck::AlreadyChecked)};
  });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index_in, const Tensor& src, ops::IndexCheck check) {
  const IndexOnDevice on_device = index_on_device(x, axis, index_in, check, "scatter_add");
  const Tensor index = on_device.index;  // what the backward keeps
  Tensor out = ops::scatter_add(x, axis, index, src, on_device.check);
  // out = x + (src scattered): x's gradient passes through; src[i] reads its gradient where it landed.
  record("scatter_add", {x, src}, out, [axis, index](const Tensor& g) -> std::vector<Tensor> {
    return {g, ops::gather(g, axis, index, ops::IndexCheck::AlreadyChecked)};
  });
  return out;
}

}  // namespace glance
