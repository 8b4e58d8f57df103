// Strided views on the GPU: how a kernel finds element i of each of its operands.
//
// A view's element (i0, ..., ik) sits at offset + i0*s0 + ... + ik*sk (tensor/tensor.h). A kernel thread gets
// a *linear* index i (row-major over the shape) and turns it into one element offset per operand:
//
//     for d = ndim-1 down to 0:   idx = i % size[d];  i /= size[d];  off[k] += idx * stride[k][d]
//
// Divisions are the expensive part on a GPU (a 64-bit one is a long instruction sequence), so before a launch
// the host makes ndim as small as it can, exactly as the CPU backend does (tensor/cpu/strided_loop.h):
//   - size-1 axes are dropped;
//   - two neighbouring axes merge when, for EVERY operand, one step along the outer one equals a whole sweep
//     of the inner one (stride_outer == stride_inner * size_inner).
// A contiguous tensor becomes one axis (no division at all), a [B, T, C] + [C] bias add becomes 2-D, a
// transposed matrix stays 2-D. And when the element count fits in 31 bits the divisions run in 32 bits.
//
// The layout travels to the kernel by value (a few hundred bytes of kernel parameters) and holds at most
// kMaxDims axes after coalescing; elementwise ops with more split the extra outer axes into separate launches
// (for_each_launch below), the other kernels refuse them with a message.
#pragma once
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/shape.h"

namespace glance::cuda {

constexpr int kMaxDims = 8;

// ---- host side ----

// N operands over one shape, each with its own strides (in elements), any number of axes.
template <int N>
struct Coalesced {
  Shape shape;                     // outermost first; at least one axis (a scalar is [1])
  std::array<Strides, N> strides;  // per operand, aligned with `shape`
  int64_t numel() const { return numel_of(shape); }
  // True when every operand walks its memory with stride 1 over a single axis: the contiguous fast path.
  bool contiguous() const {
    if (shape.size() != 1) return false;
    for (int k = 0; k < N; ++k) {
      if (strides[k][0] != 1) return false;
    }
    return true;
  }
};

template <int N>
Coalesced<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  // Built innermost first, so "the current innermost group" is the back of the vectors.
  Shape sizes;
  std::array<Strides, N> st;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    for (int k = 0; merge && k < N; ++k) merge = strides[k][d] == st[k].back() * sizes.back();
    if (merge) {
      sizes.back() *= shape[d];
      continue;
    }
    sizes.push_back(shape[d]);
    for (int k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  if (sizes.empty()) {
    sizes.push_back(1);
    for (int k = 0; k < N; ++k) st[k].push_back(1);
  }
  Coalesced<N> c;
  c.shape.assign(sizes.rbegin(), sizes.rend());
  for (int k = 0; k < N; ++k) c.strides[k].assign(st[k].rbegin(), st[k].rend());
  return c;
}

// What a kernel receives: sizes and per-operand strides of at most kMaxDims axes.
template <int N>
struct StridedLayout {
  int ndim = 0;
  bool index32 = false;  // every linear index fits in 31 bits: decompose with 32-bit divisions
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
};

template <int N>
StridedLayout<N> make_layout(const Shape& shape, const std::array<Strides, N>& strides, const char* op) {
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    throw std::invalid_argument(std::string("cuda ") + op + ": " + std::to_string(shape.size()) +
                                " axes remain after merging (at most " + std::to_string(kMaxDims) +
                                " are supported); make the operands contiguous first");
  }
  StridedLayout<N> layout;
  layout.ndim = static_cast<int>(shape.size());
  layout.index32 = numel_of(shape) < (int64_t(1) << 31);
  for (int d = 0; d < layout.ndim; ++d) {
    layout.sizes[d] = shape[d];
    for (int k = 0; k < N; ++k) layout.strides[k][d] = strides[k][d];
  }
  return layout;
}

template <int N>
StridedLayout<N> make_layout(const Coalesced<N>& c, const char* op) {
  return make_layout<N>(c.shape, c.strides, op);
}

// Calls launch(layout, base) with base[k] the element offset to add to operand k: once, when the coalesced
// layout fits in kMaxDims axes; otherwise once per position of the extra outermost axes (an odometer on the
// host), each launch covering the innermost kMaxDims axes.
template <int N, typename Launch>
void for_each_launch(const Coalesced<N>& c, const char* op, Launch&& launch) {
  const int ndim = static_cast<int>(c.shape.size());
  if (ndim <= kMaxDims) {
    launch(make_layout<N>(c, op), std::array<int64_t, N>{});
    return;
  }
  const int outer = ndim - kMaxDims;
  Shape inner_shape(c.shape.begin() + outer, c.shape.end());
  std::array<Strides, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k].assign(c.strides[k].begin() + outer, c.strides[k].end());
  const StridedLayout<N> layout = make_layout<N>(inner_shape, inner_strides, op);
  std::vector<int64_t> index(outer, 0);
  const int64_t positions = numel_of(Shape(c.shape.begin(), c.shape.begin() + outer));
  for (int64_t p = 0; p < positions; ++p) {
    std::array<int64_t, N> base{};
    for (int d = 0; d < outer; ++d) {
      for (int k = 0; k < N; ++k) base[k] += index[d] * c.strides[k][d];
    }
    launch(layout, base);
    for (int d = outer - 1; d >= 0; --d) {
      if (++index[d] < c.shape[d]) break;
      index[d] = 0;
    }
  }
}

// ---- device side ----

// The element offsets (in elements) of linear index i, one per operand.
template <int N>
__device__ __forceinline__ void offsets_of(const StridedLayout<N>& L, int64_t i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  if (L.index32) {
    uint32_t rest = static_cast<uint32_t>(i);
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d >= L.ndim) continue;
      const uint32_t size = static_cast<uint32_t>(L.sizes[d]);
      const uint32_t idx = rest % size;
      rest /= size;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += int64_t(idx) * L.strides[k][d];
    }
  } else {
    int64_t rest = i;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d >= L.ndim) continue;
      const int64_t idx = rest % L.sizes[d];
      rest /= L.sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * L.strides[k][d];
    }
  }
}

}  // namespace glance::cuda
