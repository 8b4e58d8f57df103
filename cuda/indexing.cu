// CudaBackend, part 8: index_select, gather and scatter_add, on any strided views. Index tensors are int64
// and already bounds-checked by the op layer (tensor/ops_join_index.cpp); one that arrives on the CPU is
// copied to the device first.
//
// The CPU's trick (tensor/cpu/indexing.cpp) carries over: give the indexed operand a stride of 0 along `axis`,
// so it walks in step with the others over one shape, and add index * (its real stride along axis) per
// element. Then all three ops are one thread per element of a 3-operand strided layout (strided.cuh):
//
//   gather        out[o] = in[i + index[x] * in_step]          layout {out, index, in with axis stride 0}
//   index_select  the same, with the 1-D index expanded to out's shape (stride 0 off the axis)
//   scatter_add   out[o + index[x] * out_step] += src[s]       layout {src, index, out with axis stride 0}
//
// scatter_add: two source elements may land on the same output element, so the add is atomic. float and
// int32 use the native atomicAdd, float64 the native double atomicAdd (sm_60 and newer; we build for sm_80
// and sm_90), int64 the unsigned 64-bit one (two's complement addition is the same bit operation). uint8 and
// bool have no byte atomics: a compare-and-swap loop on the aligned 32-bit word that holds the byte (the word
// lies inside the block: the allocator hands out 512-byte multiples). Float atomics add in whatever order
// the threads arrive, so float results may differ from the CPU's serial loop in the last bits, and between runs.
#include <stdexcept>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"
#include "cuda/strided.cuh"
#include "tensor/ops.h"

namespace glance::cuda {

namespace {

Strides zero_axis(const Strides& s, int64_t axis) {
  Strides r = s;
  r[axis] = 0;
  return r;
}

// The index on the device, as int64.
Tensor device_index(const Tensor& index, const char* what) {
  index.check_dtype(DType::Int64, what);
  return index.device().is_cuda() ? index : ops::to_device(index, Device::cuda(0));
}

template <typename T>
__global__ void gather_kernel(StridedLayout<3> layout, int64_t n, T* out, const int64_t* index, const T* in,
                              int64_t in_step) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    int64_t off[3];
    offsets_of<3>(layout, i, off);
    out[off[0]] = in[off[2] + index[off[1]] * in_step];
  }
}

// Adds v into the byte at p, atomically: `combine` gives the new byte from the old one.
template <typename Combine>
__device__ void atomic_update_byte(uint8_t* p, Combine combine) {
  unsigned int* word = reinterpret_cast<unsigned int*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(3));
  const unsigned int shift = static_cast<unsigned int>(reinterpret_cast<uintptr_t>(p) & 3) * 8;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    const uint8_t cur = static_cast<uint8_t>((assumed >> shift) & 0xFFu);
    const unsigned int replaced = (assumed & ~(0xFFu << shift)) | (static_cast<unsigned int>(combine(cur)) << shift);
    old = atomicCAS(word, assumed, replaced);
  } while (old != assumed);
}

template <typename T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    atomicAdd(p, v);
  } else if constexpr (std::is_same_v<T, int32_t>) {
    atomicAdd(reinterpret_cast<int*>(p), static_cast<int>(v));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    atomic_update_byte(p, [v](uint8_t cur) { return static_cast<uint8_t>(cur + v); });  // wraps, like the CPU
  } else {  // bool: the CPU computes bool(dst + x), i.e. dst || x
    atomic_update_byte(reinterpret_cast<uint8_t*>(p), [v](uint8_t cur) { return static_cast<uint8_t>(cur != 0 || v); });
  }
}

template <typename T>
__global__ void scatter_add_kernel(StridedLayout<3> layout, int64_t n, const T* src, const int64_t* index, T* out,
                                   int64_t out_step) {
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    int64_t off[3];
    offsets_of<3>(layout, i, off);
    atomic_add(out + off[2] + index[off[1]] * out_step, src[off[0]]);
  }
}

int64_t count_of(const StridedLayout<3>& layout) {
  int64_t n = 1;
  for (int d = 0; d < layout.ndim; ++d) n *= layout.sizes[d];
  return n;
}

// out = in gathered along `axis` through `index`, which has out's shape (or is expanded to it).
void run_gather(const char* what, const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  if (out.numel() == 0) return;
  const int64_t in_step = in.strides()[axis];
  const Coalesced<3> c = coalesce<3>(out.shape(), {out.strides(), index.strides(), zero_axis(in.strides(), axis)});
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
  GLANCE_DISPATCH(out.dtype(), T, {
    T* o = static_cast<T*>(out.raw_data());
    const T* x = static_cast<const T*>(in.raw_data());
    for_each_launch<3>(c, what, [&](const StridedLayout<3>& layout, const std::array<int64_t, 3>& base) {
      const int64_t n = count_of(layout);
      gather_kernel<T><<<blocks_for(n), kThreads>>>(layout, n, o + base[0], idx + base[1], x + base[2], in_step);
      GLANCE_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace

void CudaBackend::index_select(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  require_cuda(out, "index_select");
  require_cuda(in, "index_select");
  in.check_dtype(out.dtype(), "cuda index_select (in)");
  const Tensor idx = device_index(index, "cuda index_select (index)");
  // The 1-D index as a view of out's shape: its own stride along `axis`, 0 elsewhere.
  Strides idx_strides(out.dim(), 0);
  idx_strides[axis] = idx.strides()[0];
  const Tensor expanded = idx.as_strided(out.shape(), idx_strides, idx.offset());
  run_gather("index_select", out, in, axis, expanded);
}

void CudaBackend::gather(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  require_cuda(out, "gather");
  require_cuda(in, "gather");
  in.check_dtype(out.dtype(), "cuda gather (in)");
  const Tensor idx = device_index(index, "cuda gather (index)");
  if (idx.shape() != out.shape()) throw std::invalid_argument("cuda gather: index and out shapes differ");
  run_gather("gather", out, in, axis, idx);
}

void CudaBackend::scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) {
  require_cuda(out, "scatter_add");
  require_cuda(src, "scatter_add");
  src.check_dtype(out.dtype(), "cuda scatter_add (src)");
  const Tensor idx = device_index(index, "cuda scatter_add (index)");
  if (idx.shape() != src.shape()) throw std::invalid_argument("cuda scatter_add: index and src shapes differ");
  if (src.numel() == 0) return;
  const int64_t out_step = out.strides()[axis];
  const Coalesced<3> c = coalesce<3>(src.shape(), {src.strides(), idx.strides(), zero_axis(out.strides(), axis)});
  const int64_t* pi = static_cast<const int64_t*>(idx.raw_data());
  GLANCE_DISPATCH(out.dtype(), T, {
    const T* s = static_cast<const T*>(src.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    for_each_launch<3>(c, "scatter_add", [&](const StridedLayout<3>& layout, const std::array<int64_t, 3>& base) {
      const int64_t n = count_of(layout);
      scatter_add_kernel<T><<<blocks_for(n), kThreads>>>(layout, n, s + base[0], pi + base[1], o + base[2], out_step);
      GLANCE_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace glance::cuda
