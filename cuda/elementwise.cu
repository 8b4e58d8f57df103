// CudaBackend, part 2: fill, copy (with dtype conversion) and where, on the elementwise engine
// (elementwise.cuh). unary.cu and binary.cu hold the op functors of unary() and binary().
//
// Dtype rules, as the CPU's (tensor/cpu/elementwise.cpp): conversions are C++ static_cast, except that
// anything -> bool is `value != 0` (NaN -> true). Out-of-range float -> integer conversions are undefined in
// C++ and differ between the CPU (wraps) and the GPU (saturates); nothing in glance relies on them.
#include "cuda/elementwise.cuh"

#include <cmath>

namespace glance::cuda {

namespace {

template <typename T>
struct FillFn {
  T value;
  __device__ T operator()() const { return value; }
};

template <typename O, typename I>
struct ConvertFn {
  __device__ O operator()(I v) const { return convert<O>(v); }
};

template <typename T>
struct WhereFn {
  __device__ T operator()(bool c, T a, T b) const { return c ? a : b; }
};

}  // namespace

void CudaBackend::fill(const Tensor& out, double value) {
  require_cuda(out, "fill");
  if (out.numel() == 0) return;
  // Zero, contiguous: every dtype's zero is all-zero bytes, and cudaMemset is as fast as a copy engine goes.
  // (Not -0.0, whose sign bit is set: the kernel writes it, as the CPU does.)
  if (value == 0.0 && !std::signbit(value) && out.is_contiguous()) {
    GLANCE_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, static_cast<size_t>(out.numel()) * out.itemsize(), 0));
    return;
  }
  GLANCE_DISPATCH(out.dtype(), T, { launch_map<T>("fill", FillFn<T>{convert<T>(value)}, out, {}); });
}

namespace {

// out[i] = fma(i, step, start) in double, as the CPU computes it (an explicit fma: nvcc would contract
// start + i * step into one anyway, the CPU compiler might not), then converted.
template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    out[i] = convert<T>(fma(static_cast<double>(i), step, start));
  }
}

}  // namespace

void CudaBackend::arange(const Tensor& out, double start, double step) {
  require_cuda(out, "arange");
  if (out.dim() != 1 || !out.is_contiguous()) throw std::logic_error("cuda arange: expected a contiguous 1-D tensor");
  const int64_t n = out.numel();
  if (n == 0) return;
  GLANCE_DISPATCH(out.dtype(), T, {
    arange_kernel<T><<<blocks_for(n), kThreads>>>(static_cast<T*>(out.raw_data()), n, start, step);
  });
  GLANCE_CUDA_CHECK_LAUNCH();
}

void CudaBackend::copy(const Tensor& out, const Tensor& in) {
  require_cuda(out, "copy");
  require_cuda(in, "copy");
  if (out.shape() != in.shape()) {
    throw std::logic_error("cuda copy: shapes differ (" + shape_str(in.shape()) + " vs " + shape_str(out.shape()) + ")");
  }
  if (out.numel() == 0) return;
  // Same dtype, both contiguous: one device-to-device memcpy.
  if (out.dtype() == in.dtype() && out.is_contiguous() && in.is_contiguous()) {
    GLANCE_CUDA_CHECK(cudaMemcpyAsync(out.raw_data(), in.raw_data(), static_cast<size_t>(out.numel()) * out.itemsize(),
                                      cudaMemcpyDeviceToDevice, 0));
    return;
  }
  GLANCE_DISPATCH(out.dtype(), O, {
    GLANCE_DISPATCH(in.dtype(), I, { launch_map<O, I>("copy", ConvertFn<O, I>{}, out, {in}); });
  });
}

void CudaBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  cond.check_dtype(DType::Bool, "cuda where (condition)");
  a.check_dtype(out.dtype(), "cuda where (a)");
  b.check_dtype(out.dtype(), "cuda where (b)");
  GLANCE_DISPATCH(out.dtype(), T, { launch_map<T, bool, T, T>("where", WhereFn<T>{}, out, {cond, a, b}); });
}

}  // namespace glance::cuda
