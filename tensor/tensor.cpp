#include "tensor/tensor.h"

#include <cstring>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace glance {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("empty: negative size in shape " + shape_str(shape));
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;  // the stride of a size-1 axis never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  char* base = static_cast<char*>(impl().storage->data());
  return base + offset() * static_cast<int64_t>(itemsize());
}

void Tensor::check_dtype(DType expected, const char* op) const {
  if (dtype() != expected) {
    throw std::invalid_argument(std::string(op) + ": expected dtype " + dtype_name(expected) + ", got " +
                                dtype_name(dtype()));
  }
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  // On another device: one copy to the host first (as PyTorch's tolist() does), then read it there.
  if (!device().is_cpu()) return ops::to_device(*this, Device::cpu()).to_vector<T>();
  check_dtype(dtype_of<T>::value, "to_vector");
  std::vector<T> out(static_cast<size_t>(numel()));
  // Walk the elements in row-major order with an odometer over the shape.
  const T* base = static_cast<const T*>(raw_data());
  std::vector<int64_t> index(dim(), 0);
  for (size_t n = 0; n < out.size(); ++n) {
    int64_t pos = 0;
    for (int64_t d = 0; d < dim(); ++d) pos += index[d] * strides()[d];
    out[n] = base[pos];
    for (int64_t d = dim() - 1; d >= 0; --d) {
      if (++index[d] < shape()[d]) break;
      index[d] = 0;
    }
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

double Tensor::item() const {
  if (numel() != 1) {
    throw std::invalid_argument("item: expected a tensor with one element, got shape " + shape_str(shape()));
  }
  if (!device().is_cpu()) return ops::to_device(*this, Device::cpu()).item();  // waits for the device's queued work
  double value = 0;
  GLANCE_DISPATCH(dtype(), T, { value = static_cast<double>(*static_cast<const T*>(raw_data())); });
  return value;
}

Tensor Tensor::as_strided(const Shape& shape, const Strides& strides, int64_t offset) const {
  if (shape.size() != strides.size()) {
    throw std::invalid_argument("as_strided: shape " + shape_str(shape) + " and strides " + shape_str(strides) +
                                " differ in length");
  }
  // Bounds: the lowest and highest element the view can touch must lie inside the storage.
  int64_t lo = offset, hi = offset;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) empty = true;
    int64_t reach = (shape[i] - 1) * strides[i];
    (reach < 0 ? lo : hi) += reach;
  }
  int64_t capacity = static_cast<int64_t>(storage()->nbytes() / itemsize());
  if (!empty && (lo < 0 || hi >= capacity)) {
    throw std::out_of_range("as_strided: view " + shape_str(shape) + " with strides " + shape_str(strides) +
                            " at offset " + std::to_string(offset) + " reaches outside a storage of " +
                            std::to_string(capacity) + " elements");
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return as_strided(shape(), strides(), offset()); }

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !is_floating(dtype())) {
    throw std::invalid_argument(std::string("set_requires_grad: only floating tensors can require grad, got ") +
                                dtype_name(dtype()));
  }
  if (!is_leaf()) throw std::invalid_argument("set_requires_grad: only leaf tensors can change requires_grad");
  impl().requires_grad = on;
  return *this;
}

}  // namespace glance
