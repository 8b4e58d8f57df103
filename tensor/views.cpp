// Views: new shapes and strides over the same Storage. No element is copied here (except by reshape's
// fallback, which says so). Each function computes the new layout and calls Tensor::as_strided.
#include <algorithm>
#include <optional>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::ops {

namespace {

// Replaces one -1 in `shape` by whatever makes the element count equal `numel`.
Shape infer_size(Shape shape, int64_t numel, const char* op, const Shape& from) {
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) throw std::invalid_argument(std::string(op) + ": only one -1 is allowed in " + shape_str(shape));
      infer_at = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw std::invalid_argument(std::string(op) + ": negative size in " + shape_str(shape));
    } else {
      known *= shape[i];
    }
  }
  if (infer_at >= 0 && known != 0 && numel % known == 0) shape[infer_at] = numel / known;
  if (numel_of(shape) != numel || (infer_at >= 0 && known == 0)) {
    throw std::invalid_argument(std::string(op) + ": cannot reshape " + shape_str(from) + " (" +
                                std::to_string(numel) + " elements) to " + shape_str(shape));
  }
  return shape;
}

// Strides that let `new_shape` address the same elements as (old_shape, old_strides) in row-major
// order, or nothing when no strides can (then reshape must copy). The idea: split the old axes into
// chunks whose elements are evenly spaced in memory; every new axis must fall inside one chunk.
std::optional<Strides> view_strides(const Shape& old_shape, const Strides& old_strides, const Shape& new_shape) {
  Strides out(new_shape.size());
  if (numel_of(old_shape) == 0 || old_shape.empty()) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    bool chunk_ends = d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
      out[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_base_stride = old_strides[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

Tensor view(const Tensor& t, const Shape& shape) {
  Shape target = infer_size(shape, t.numel(), "view", t.shape());
  auto strides = view_strides(t.shape(), t.strides(), target);
  if (!strides) {
    throw std::invalid_argument("view: a tensor of shape " + shape_str(t.shape()) + " and strides " +
                                shape_str(t.strides()) + " cannot be viewed as " + shape_str(target) +
                                " without a copy (use reshape)");
  }
  return t.as_strided(target, *strides, t.offset());
}

Tensor reshape(const Tensor& t, const Shape& shape) {
  Shape target = infer_size(shape, t.numel(), "reshape", t.shape());
  if (auto strides = view_strides(t.shape(), t.strides(), target)) return t.as_strided(target, *strides, t.offset());
  return view(contiguous(t), target);  // the layout cannot express it: copy once
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& order) {
  if (static_cast<int64_t>(order.size()) != t.dim()) {
    throw std::invalid_argument("permute: order " + shape_str(order) + " does not match a tensor of shape " +
                                shape_str(t.shape()));
  }
  Shape shape(order.size());
  Strides strides(order.size());
  std::vector<bool> seen(order.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t a = normalize_axis(order[i], t.dim(), "permute");
    if (seen[a]) throw std::invalid_argument("permute: axis " + std::to_string(a) + " repeats in " + shape_str(order));
    seen[a] = true;
    shape[i] = t.shape()[a];
    strides[i] = t.strides()[a];
  }
  return t.as_strided(shape, strides, t.offset());
}

Tensor transpose(const Tensor& t, int64_t axis0, int64_t axis1) {
  std::vector<int64_t> order(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) order[i] = i;
  std::swap(order[normalize_axis(axis0, t.dim(), "transpose")], order[normalize_axis(axis1, t.dim(), "transpose")]);
  return permute(t, order);
}

Tensor narrow(const Tensor& t, int64_t axis, int64_t start, int64_t length) {
  int64_t a = normalize_axis(axis, t.dim(), "narrow");
  int64_t size = t.shape()[a];
  if (start < 0) start += size;
  if (start < 0 || length < 0 || start + length > size) {
    throw std::out_of_range("narrow: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                            ") is outside axis " + std::to_string(a) + " of size " + std::to_string(size) +
                            " (shape " + shape_str(t.shape()) + ")");
  }
  Shape shape = t.shape();
  shape[a] = length;
  return t.as_strided(shape, t.strides(), t.offset() + start * t.strides()[a]);
}

Tensor slice(const Tensor& t, int64_t axis, int64_t start, int64_t end, int64_t step) {
  int64_t a = normalize_axis(axis, t.dim(), "slice");
  if (step <= 0) throw std::invalid_argument("slice: step must be positive, got " + std::to_string(step));
  int64_t size = t.shape()[a];
  // Python's rules: negative bounds count from the end, then both are clamped into [0, size].
  auto clamp = [size](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + size : i, 0, size); };
  start = clamp(start);
  end = std::max(clamp(end), start);
  Shape shape = t.shape();
  Strides strides = t.strides();
  shape[a] = (end - start + step - 1) / step;
  strides[a] *= step;
  return t.as_strided(shape, strides, t.offset() + start * t.strides()[a]);
}

Tensor select(const Tensor& t, int64_t axis, int64_t index) {
  int64_t a = normalize_axis(axis, t.dim(), "select");
  int64_t size = t.shape()[a];
  if (index < -size || index >= size) {
    throw std::out_of_range("select: index " + std::to_string(index) + " is out of range for axis " +
                            std::to_string(a) + " of size " + std::to_string(size));
  }
  if (index < 0) index += size;
  Shape shape = t.shape();
  Strides strides = t.strides();
  int64_t offset = t.offset() + index * strides[a];
  shape.erase(shape.begin() + a);
  strides.erase(strides.begin() + a);
  return t.as_strided(shape, strides, offset);
}

Tensor expand(const Tensor& t, const Shape& shape) {
  if (static_cast<int64_t>(shape.size()) < t.dim()) {
    throw std::invalid_argument("expand: cannot expand " + shape_str(t.shape()) + " to fewer dims " + shape_str(shape));
  }
  size_t lead = shape.size() - t.shape().size();
  Shape out_shape(shape.size());
  Strides out_strides(shape.size(), 0);  // new leading axes repeat: stride 0
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      if (shape[i] < 0) throw std::invalid_argument("expand: -1 is not allowed for a new axis in " + shape_str(shape));
      out_shape[i] = shape[i];
      continue;
    }
    int64_t have = t.shape()[i - lead];
    int64_t want = shape[i] == -1 ? have : shape[i];
    if (have == want) {
      out_shape[i] = have;
      out_strides[i] = t.strides()[i - lead];
    } else if (have == 1) {
      out_shape[i] = want;  // a size-1 axis repeats with stride 0
    } else {
      throw std::invalid_argument("expand: cannot expand " + shape_str(t.shape()) + " to " + shape_str(shape) +
                                  " (axis " + std::to_string(i) + ": " + std::to_string(have) + " vs " +
                                  std::to_string(want) + ")");
    }
  }
  return t.as_strided(out_shape, out_strides, t.offset());
}

Tensor squeeze(const Tensor& t, int64_t axis) {
  int64_t a = normalize_axis(axis, t.dim(), "squeeze");
  if (t.shape()[a] != 1) {
    throw std::invalid_argument("squeeze: axis " + std::to_string(a) + " of shape " + shape_str(t.shape()) +
                                " has size " + std::to_string(t.shape()[a]) + ", not 1");
  }
  Shape shape = t.shape();
  Strides strides = t.strides();
  shape.erase(shape.begin() + a);
  strides.erase(strides.begin() + a);
  return t.as_strided(shape, strides, t.offset());
}

Tensor squeeze(const Tensor& t) {
  Shape shape;
  Strides strides;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (t.shape()[i] == 1) continue;
    shape.push_back(t.shape()[i]);
    strides.push_back(t.strides()[i]);
  }
  return t.as_strided(shape, strides, t.offset());
}

Tensor unsqueeze(const Tensor& t, int64_t axis) {
  int64_t a = normalize_axis(axis, t.dim() + 1, "unsqueeze");
  Shape shape = t.shape();
  Strides strides = t.strides();
  // The stride of a size-1 axis is never used to step; pick the one a contiguous tensor would have.
  int64_t stride = a < t.dim() ? t.strides()[a] * t.shape()[a] : 1;
  shape.insert(shape.begin() + a, 1);
  strides.insert(strides.begin() + a, stride);
  return t.as_strided(shape, strides, t.offset());
}

Tensor flatten(const Tensor& t, int64_t start_axis, int64_t end_axis) {
  if (t.dim() == 0) return reshape(t, {1});
  int64_t s = normalize_axis(start_axis, t.dim(), "flatten");
  int64_t e = normalize_axis(end_axis, t.dim(), "flatten");
  if (s > e) throw std::invalid_argument("flatten: start axis " + std::to_string(s) + " is after end axis " + std::to_string(e));
  Shape shape(t.shape().begin(), t.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= t.shape()[i];
  shape.push_back(merged);
  shape.insert(shape.end(), t.shape().begin() + e + 1, t.shape().end());
  return reshape(t, shape);
}

}  // namespace glance::ops
