// Tensor: a cheap, shared handle to an n-dimensional view of a Storage.
//
//   element (i0, i1, ..., ik) lives at  storage + (offset + i0*strides[0] + ... + ik*strides[k]) * itemsize
//
// Views (reshape of a contiguous tensor, permute, transpose, narrow, expand, squeeze, ...) make a new
// TensorImpl over the same Storage: no bytes move. contiguous() copies only when the layout needs it.
//
// This header is the tensor layer: it knows nothing of gradients except where to keep them. The
// differentiable functions (add, matmul, softmax, ...) live in autograd/, which fills in the
// `grad_fn` field below; the plain, non-recording math they call lives in tensor/ops.h.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace glance {

namespace autograd {
struct Node;  // defined in autograd/node.h
}

// What a Tensor handle points at. Shared by copies of the handle; not by views.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;   // in elements
  int64_t offset = 0;  // in elements, from the start of storage
  DType dtype = DType::Float32;

  // Autograd metadata (the autograd layer reads and writes these).
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;          // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;   // the op that produced this tensor, if recorded
  std::string name;                          // optional label for printouts and graph dumps
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (like a null pointer): defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Allocates an uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_of(impl().shape); }
  size_t itemsize() const { return dtype_size(impl().dtype); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to element (0, ..., 0). data<T>() checks that T matches the dtype.
  void* raw_data() const;
  template <typename T> T* data() const {
    check_dtype(dtype_of<T>::value, "data");
    return static_cast<T*>(raw_data());
  }
  // The value of a one-element tensor, converted to double (CPU only).
  double item() const;
  // Copies the elements out in row-major order (any layout, CPU only).
  template <typename T> std::vector<T> to_vector() const;

  // A new view of the same storage with the given layout (no checks beyond bounds).
  Tensor as_strided(const Shape& shape, const Strides& strides, int64_t offset) const;
  // The same data as a tensor that records no history (shares storage, has no grad_fn).
  Tensor detach() const;

  // ---- autograd metadata ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::string& name() const { return impl().name; }
  Tensor& set_name(std::string name) { impl().name = std::move(name); return *this; }

  // Runs backpropagation from this tensor. `gradient` defaults to 1 for a one-element tensor and must
  // be given otherwise. Defined in autograd/engine.cpp, so it needs glance_autograd at link time.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  // The PyTorch-like printout (tensor/print.cpp).
  std::string str() const;

  TensorImpl& impl() const {
    if (!impl_) throw std::logic_error("Tensor: use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  void check_dtype(DType expected, const char* op) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

}  // namespace glance
