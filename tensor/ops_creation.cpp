// Creating tensors, copying them, and moving them between dtypes and devices.
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace glance::ops {

Tensor empty(const Shape& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  if (step == 0) throw std::invalid_argument("arange: step must not be 0");
  double count = std::ceil((end - start) / step);
  int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor out = Tensor::empty({n}, dtype, device);
  if (n > 0) backend_for(device).arange(out, start, step);  // on the device: nothing to upload
  return out;
}

Tensor eye(int64_t n, DType dtype, Device device) {
  if (n < 0) throw std::invalid_argument("eye: size must be >= 0, got " + std::to_string(n));
  Tensor t = zeros({n, n}, dtype, device);
  // The diagonal of an n x n row-major matrix is a 1-D view with stride n + 1.
  if (n > 0) fill_(t.as_strided({n}, {n + 1}, t.offset()), 1.0);
  return t;
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  if (numel_of(shape) != static_cast<int64_t>(values.size())) {
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values do not fill shape " +
                                shape_str(shape));
  }
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];  // a loop, since std::vector<bool> has no data()
  return t;
}
template Tensor from_vector(const std::vector<float>&, const Shape&);
template Tensor from_vector(const std::vector<double>&, const Shape&);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&);
template Tensor from_vector(const std::vector<bool>&, const Shape&);

void copy_(const Tensor& dst, const Tensor& src) {
  Tensor source = src;
  if (src.device() != dst.device()) source = to_device(src, dst.device());
  Shape shape = broadcast_shapes(dst.shape(), source.shape(), "copy_");
  if (shape != dst.shape()) {
    throw std::invalid_argument("copy_: source of shape " + shape_str(src.shape()) +
                                " does not broadcast to destination " + shape_str(dst.shape()));
  }
  backend_for(dst.device()).copy(dst, expand(source, dst.shape()));
}

void fill_(const Tensor& dst, double value) { backend_for(dst.device()).fill(dst, value); }

Tensor clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_for(t.device()).copy(out, t);
  return out;
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, t.device());
  backend_for(t.device()).copy(out, t);
  return out;
}

Tensor to_device(const Tensor& t, Device device) {
  if (t.device() == device) return t;
  Tensor src = contiguous(t);
  Tensor out = Tensor::empty(t.shape(), t.dtype(), device);
  size_t nbytes = static_cast<size_t>(t.numel()) * t.itemsize();
  if (nbytes == 0) return out;
  if (src.device().is_cpu()) {
    backend_for(device).copy_from_host(out.raw_data(), src.raw_data(), nbytes);
  } else if (device.is_cpu()) {
    backend_for(src.device()).copy_to_host(out.raw_data(), src.raw_data(), nbytes);
  } else {  // device to device: through the host (rare; a backend may do better)
    Tensor host = to_device(src, Device::cpu());
    backend_for(device).copy_from_host(out.raw_data(), host.raw_data(), nbytes);
  }
  return out;
}

}  // namespace glance::ops
