// The elementwise engine: out[i] = fn(in_1[i], ..., in_k[i]) over same-shaped strided views, k = 0..3.
// fill (k = 0), copy and unary ops (k = 1), binary ops (k = 2), where (k = 3) and the simple fused kernels are
// all one functor handed to launch_map.
//
// Two kernels, chosen by the host after coalescing the operands (strided.cuh):
//   map_contiguous_kernel   every operand is one unit-stride run and suitably aligned: each thread loads V
//                           neighbouring elements per operand as one vector (16 bytes for float32: V = 4), applies
//                           fn V times and stores one vector. Adjacent threads touch adjacent 16-byte pieces, so a
//                           warp moves 512 contiguous bytes per operand per step.
//   map_strided_kernel      anything else (transposed, sliced, broadcast views): each thread turns its linear
//                           index into one offset per operand (offsets_of) and applies fn once. Reads along the
//                           innermost axis are still coalesced when that axis has unit stride.
// Both are grid-stride loops, so a launch of at most kMaxBlocks blocks covers any size.
//
// The functor is an ordinary struct with a __device__ operator() (no extended lambdas needed), e.g.
//   struct Relu { __device__ float operator()(float x) const { return x < 0 ? 0 : x; } };
//   launch_map<float, float>("relu", Relu{}, out, {in});
#pragma once
#include <cuda/std/tuple>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"
#include "cuda/strided.cuh"
#include "tensor/tensor.h"

namespace glance::cuda {

// V elements of T loaded or stored as one vector access (alignas makes the compiler emit ld.global.v4 etc.).
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// How many elements per vector access: 16 bytes of the widest operand, at most 8 elements.
template <typename... T>
constexpr int vector_width() {
  size_t widest = 1;
  ((widest = sizeof(T) > widest ? sizeof(T) : widest), ...);
  const int v = static_cast<int>(16 / widest);
  return v < 1 ? 1 : (v > 8 ? 8 : v);
}

// ---- kernels ----

template <typename Fn, typename O, typename... I, size_t... Is>
__device__ __forceinline__ void apply_strided(const Fn& fn, O* out, const int64_t* off, std::index_sequence<Is...>,
                                              const I*... in) {
  out[off[0]] = fn(in[off[Is + 1]]...);
}

template <typename Fn, typename O, typename... I>
__global__ void map_strided_kernel(StridedLayout<1 + sizeof...(I)> layout, int64_t n, Fn fn, O* out,
                                   const I*... in) {
  constexpr int N = 1 + sizeof...(I);
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    int64_t off[N];
    offsets_of<N>(layout, i, off);
    apply_strided(fn, out, off, std::index_sequence_for<I...>{}, in...);
  }
}

template <typename Fn, typename Tuple, size_t... Is>
__device__ __forceinline__ auto apply_lane(const Fn& fn, const Tuple& x, int j, std::index_sequence<Is...>) {
  return fn(::cuda::std::get<Is>(x).v[j]...);
}

template <int V, typename Fn, typename O, typename... I>
__global__ void map_contiguous_kernel(int64_t n, Fn fn, O* out, const I*... in) {
  const int64_t groups = n / V;  // whole vectors; the rest (< V elements) is the tail below
  const int64_t tid = global_thread_id(), threads = global_thread_count();
  for (int64_t g = tid; g < groups; g += threads) {
    const ::cuda::std::tuple<Vec<I, V>...> x(reinterpret_cast<const Vec<I, V>*>(in)[g]...);
    Vec<O, V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = apply_lane(fn, x, j, std::index_sequence_for<I...>{});
    reinterpret_cast<Vec<O, V>*>(out)[g] = o;
  }
  for (int64_t i = groups * V + tid; i < n; i += threads) out[i] = fn(in[i]...);
}

// ---- host side ----

namespace detail {

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename Fn, typename O, typename... I, size_t... Is>
void launch_strided(const char* what, const Coalesced<1 + sizeof...(I)>& c, const Fn& fn, O* out,
                    const std::tuple<const I*...>& in, std::index_sequence<Is...>) {
  constexpr int N = 1 + sizeof...(I);
  for_each_launch<N>(c, what, [&](const StridedLayout<N>& layout, const std::array<int64_t, N>& base) {
    int64_t n = 1;
    for (int d = 0; d < layout.ndim; ++d) n *= layout.sizes[d];
    map_strided_kernel<Fn, O, I...><<<blocks_for(n), kThreads>>>(layout, n, fn, out + base[0],
                                                                  (std::get<Is>(in) + base[Is + 1])...);
    GLANCE_CUDA_CHECK_LAUNCH();
  });
}

template <typename Fn, typename O, typename... I, size_t... Is>
void launch_contiguous(int64_t n, const Fn& fn, O* out, const std::tuple<const I*...>& in,
                       std::index_sequence<Is...>) {
  constexpr int V = vector_width<O, I...>();
  map_contiguous_kernel<V, Fn, O, I...><<<blocks_for(n, int64_t(kThreads) * V), kThreads>>>(n, fn, out,
                                                                                          std::get<Is>(in)...);
  GLANCE_CUDA_CHECK_LAUNCH();
}

}  // namespace detail

// out = fn(in...) elementwise. O and I... are the element types of out and of each input (the caller has
// dispatched on the dtypes); every input has out's shape (broadcasting is already stride 0). Writing into
// an input (out and in[0] the same view, as add_ does) is fine: each element is read and written by the same
// thread, reads first.
template <typename O, typename... I, typename Fn>
void launch_map(const char* what, const Fn& fn, const Tensor& out, const std::array<Tensor, sizeof...(I)>& in) {
  constexpr int N = 1 + sizeof...(I);
  require_cuda(out, what);
  std::array<Strides, N> strides;
  strides[0] = out.strides();
  size_t k = 1;
  for (const Tensor& t : in) {
    require_cuda(t, what);
    if (t.shape() != out.shape()) {
      throw std::logic_error(std::string("cuda ") + what + ": operand shapes differ (" + shape_str(t.shape()) +
                             " vs " + shape_str(out.shape()) + ")");
    }
    strides[k++] = t.strides();
  }
  const int64_t n = out.numel();
  if (n == 0) return;
  const Coalesced<N> c = coalesce<N>(out.shape(), strides);
  O* o = static_cast<O*>(out.raw_data());
  std::tuple<const I*...> ptrs = [&]<size_t... Is>(std::index_sequence<Is...>) {
    return std::tuple<const I*...>(static_cast<const I*>(in[Is].raw_data())...);
  }(std::index_sequence_for<I...>{});

  constexpr int V = vector_width<O, I...>();
  bool vectorise = c.contiguous() && detail::aligned(o, sizeof(O) * V);
  std::apply([&](const I*... p) { ((vectorise = vectorise && detail::aligned(p, sizeof(I) * V)), ...); }, ptrs);
  if (vectorise) {
    detail::launch_contiguous(n, fn, o, ptrs, std::index_sequence_for<I...>{});
  } else {
    detail::launch_strided(what, c, fn, o, ptrs, std::index_sequence_for<I...>{});
  }
}

}  // namespace glance::cuda
