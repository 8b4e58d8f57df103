// Joining and splitting along an axis, and the index ops (index_select, gather, scatter_add).
#include <algorithm>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::ops {

Tensor concat(const std::vector<Tensor>& tensors, int64_t axis) {
  if (tensors.empty()) throw std::invalid_argument("concat: needs at least one tensor");
  const Tensor& first = tensors[0];
  int64_t a = normalize_axis(axis, first.dim(), "concat");
  Shape shape = first.shape();
  shape[a] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    bool ok = t.dim() == first.dim() && t.dtype() == first.dtype() && t.device() == first.device();
    for (int64_t d = 0; ok && d < t.dim(); ++d) ok = d == a || t.shape()[d] == first.shape()[d];
    if (!ok) {
      throw std::invalid_argument("concat: tensor " + std::to_string(i) + " (" + dtype_name(t.dtype()) + " " +
                                  shape_str(t.shape()) + ") does not match tensor 0 (" + dtype_name(first.dtype()) +
                                  " " + shape_str(first.shape()) + ") outside axis " + std::to_string(a));
    }
    shape[a] += t.shape()[a];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    copy_(narrow(out, a, at, t.shape()[a]), t);  // each piece is copied into its slot of the result
    at += t.shape()[a];
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t axis) {
  if (tensors.empty()) throw std::invalid_argument("stack: needs at least one tensor");
  int64_t a = normalize_axis(axis, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> lifted;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape()) {
      throw std::invalid_argument("stack: tensor " + std::to_string(i) + " has shape " +
                                  shape_str(tensors[i].shape()) + ", tensor 0 has " + shape_str(tensors[0].shape()));
    }
    lifted.push_back(unsqueeze(tensors[i], a));
  }
  return concat(lifted, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw std::invalid_argument("split: negative piece size in " + shape_str(sizes));
    total += s;
  }
  if (total != x.shape()[a]) {
    throw std::invalid_argument("split: sizes " + shape_str(sizes) + " add up to " + std::to_string(total) +
                                ", but axis " + std::to_string(a) + " of " + shape_str(x.shape()) + " has " +
                                std::to_string(x.shape()[a]));
  }
  std::vector<Tensor> pieces;
  int64_t at = 0;
  for (int64_t s : sizes) {
    pieces.push_back(narrow(x, a, at, s));
    at += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t piece_size, int64_t axis) {
  if (piece_size <= 0) throw std::invalid_argument("split: piece size must be positive, got " + std::to_string(piece_size));
  int64_t n = x.size(axis);
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += piece_size) sizes.push_back(std::min(piece_size, n - at));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, axis);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  if (chunks <= 0) throw std::invalid_argument("chunk: number of chunks must be positive, got " + std::to_string(chunks));
  int64_t n = x.size(axis);
  return split(x, std::max<int64_t>((n + chunks - 1) / chunks, 1), axis);  // torch.chunk's rule
}

namespace {

// Index tensors are int64 (int32 is converted); every entry must lie in [0, size). Checked on the host, unless
// the caller says it has been (IndexCheck::AlreadyChecked).
Tensor checked_index(const Tensor& index, int64_t size, const char* op, IndexCheck check = IndexCheck::Bounds) {
  if (index.dtype() != DType::Int64 && index.dtype() != DType::Int32) {
    throw std::invalid_argument(std::string(op) + ": index must be int64 or int32, got " + dtype_name(index.dtype()));
  }
  Tensor idx = to_dtype(index, DType::Int64);
  if (check == IndexCheck::AlreadyChecked) return idx;
  for (int64_t v : to_device(idx, Device::cpu()).to_vector<int64_t>()) {
    if (v < 0 || v >= size) {
      throw std::out_of_range(std::string(op) + ": index " + std::to_string(v) + " is out of range for size " +
                              std::to_string(size));
    }
  }
  return idx;
}

void check_index_shape(const Tensor& x, const Tensor& index, int64_t a, const char* op) {
  bool ok = index.dim() == x.dim();
  for (int64_t d = 0; ok && d < x.dim(); ++d) ok = d == a || index.shape()[d] <= x.shape()[d];
  if (!ok) {
    throw std::invalid_argument(std::string(op) + ": index of shape " + shape_str(index.shape()) +
                                " does not fit input " + shape_str(x.shape()) + " along axis " + std::to_string(a));
  }
}

}  // namespace

void check_index_bounds(const Tensor& index, int64_t size, const char* op) { checked_index(index, size, op); }

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index, IndexCheck check) {
  int64_t a = normalize_axis(axis, x.dim(), "index_select");
  if (index.dim() != 1) throw std::invalid_argument("index_select: index must be 1-D, got " + shape_str(index.shape()));
  Tensor idx = checked_index(index, x.shape()[a], "index_select", check);
  Shape shape = x.shape();
  shape[a] = idx.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  backend_for(x.device()).index_select(out, x, a, idx);
  return out;
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index, IndexCheck check) {
  int64_t a = normalize_axis(axis, x.dim(), "gather");
  check_index_shape(x, index, a, "gather");
  Tensor idx = checked_index(index, x.shape()[a], "gather", check);
  Tensor out = Tensor::empty(idx.shape(), x.dtype(), x.device());
  backend_for(x.device()).gather(out, x, a, idx);
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src, IndexCheck check) {
  int64_t a = normalize_axis(axis, x.dim(), "scatter_add");
  check_index_shape(x, index, a, "scatter_add");
  if (src.device() != x.device()) {
    throw std::invalid_argument("scatter_add: src is on " + src.device().str() + ", the input on " + x.device().str());
  }
  if (src.shape() != index.shape() || src.dtype() != x.dtype()) {
    throw std::invalid_argument("scatter_add: src (" + std::string(dtype_name(src.dtype())) + " " +
                                shape_str(src.shape()) + ") must have the index's shape " + shape_str(index.shape()) +
                                " and the input's dtype " + dtype_name(x.dtype()));
  }
  Tensor idx = checked_index(index, x.shape()[a], "scatter_add", check);
  Tensor out = clone(x);
  backend_for(x.device()).scatter_add(out, a, idx, src);
  return out;
}

}  // namespace glance::ops
