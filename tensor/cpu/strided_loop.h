// Walking strided memory: how every CPU kernel visits the elements of one or more same-shaped views.
//
// A view's element (i0, ..., ik) sits at offset + i0*s0 + ... + ik*sk. Visiting elements one index
// tuple at a time would cost a multiply-add per axis per element, so kernels instead work on "rows":
//
//   1. coalesce: drop size-1 axes, and merge two neighbouring axes whenever, for EVERY operand, one step
//      along the outer axis equals a whole sweep of the inner one (stride_outer == stride_inner * size_inner).
//      A contiguous [64, 128, 32] becomes one axis of 262144 elements; a transposed one stays 2-D.
//   2. iterate rows: all axes but the innermost are walked with an odometer (a running offset per operand,
//      no multiplications); each row (pointers + length + inner strides) goes to a row kernel, which has a
//      fast, vectorisable path for unit strides and a plain strided loop otherwise.
//   3. above ~32k elements the rows (and long rows split into pieces) are shared among OpenMP threads.
//      Each element is still written by exactly one thread, so results never depend on the thread count.
//
// A 0-dim tensor (or one whose axes all have size 1) is one row of length 1.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "tensor/shape.h"
#include "tensor/tensor.h"

namespace glance::cpu {

// Below this many elements (multiply-adds for matmul) a parallel region costs more than it saves: it
// wakes the sleeping threads through the kernel, tens of microseconds on a small virtual machine, about
// what one core needs for 2^17 float additions. In alternating runs on a 2-vCPU virtual machine 2^17 gave the
// tiny demo model's dense step about 10% over 2^15, 2^19 was slower, and the larger models did not move
// (docs/performance/2026-12-06-cpu.md).
constexpr int64_t kParallelThreshold = 131072;
// When running in parallel, rows longer than this are cut into pieces so that one long row still spreads.
constexpr int64_t kRowPiece = 16384;

// N operands sharing one (coalesced) shape.
template <size_t N>
struct RowLayout {
  Shape shape;                     // coalesced sizes, outermost first; always at least one axis
  std::array<Strides, N> strides;  // per operand, in elements, aligned with `shape`

  int64_t numel() const { return numel_of(shape); }
  int64_t row_length() const { return shape.back(); }
};

template <size_t N>
RowLayout<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  // Build the axes innermost first, so "the current innermost group" is always the back of the vectors.
  Shape sizes;
  std::array<Strides, N> st;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;  // a size-1 axis never moves the offset
    bool merge = !sizes.empty();
    for (size_t k = 0; merge && k < N; ++k) merge = strides[k][d] == st[k].back() * sizes.back();
    if (merge) {
      sizes.back() *= shape[d];
      continue;
    }
    sizes.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  if (sizes.empty()) {  // a scalar: one row holding one element
    sizes.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(1);
  }
  RowLayout<N> layout;
  layout.shape.assign(sizes.rbegin(), sizes.rend());
  for (size_t k = 0; k < N; ++k) layout.strides[k].assign(st[k].rbegin(), st[k].rend());
  return layout;
}

// A multi-axis index that steps through `shape` in row-major order while keeping one running element
// offset per operand, so moving to the next position costs an add (and, rarely, a carry).
template <size_t N>
struct Odometer {
  const Shape* shape = nullptr;
  const std::array<Strides, N>* strides = nullptr;
  std::vector<int64_t> index;
  std::array<int64_t, N> offset{};

  Odometer(const Shape& sh, const std::array<Strides, N>& st) : shape(&sh), strides(&st), index(sh.size(), 0) {}

  // Jumps to the position with row-major number `linear` (one divide per axis, done once per chunk).
  void seek(int64_t linear) {
    offset.fill(0);
    for (int64_t d = static_cast<int64_t>(shape->size()) - 1; d >= 0; --d) {
      index[d] = linear % (*shape)[d];
      linear /= (*shape)[d];
      for (size_t k = 0; k < N; ++k) offset[k] += index[d] * (*strides)[k][d];
    }
  }
  void next() {
    for (int64_t d = static_cast<int64_t>(shape->size()) - 1; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k) offset[k] += (*strides)[k][d];
      if (++index[d] < (*shape)[d]) return;
      for (size_t k = 0; k < N; ++k) offset[k] -= (*strides)[k][d] * (*shape)[d];
      index[d] = 0;
    }
  }
};

// A non-owning reference to a row function: lets the row walker below be compiled once per operand count
// instead of once per kernel (there are hundreds of kernels; the walker is the same for all of them).
template <size_t N>
struct RowFnRef {
  void (*call)(void* ctx, const std::array<char*, N>& ptr, int64_t n, const std::array<int64_t, N>& stride);
  void* ctx;
};

template <size_t N>
inline void walk_rows(const RowLayout<N>& layout, const std::array<char*, N>& base,
                      const std::array<int64_t, N>& itemsize, RowFnRef<N> fn, bool allow_parallel) {
  const int64_t total = layout.numel();
  if (total == 0) return;
  const int64_t n = layout.row_length();
  const int64_t rows = total / n;
  std::array<int64_t, N> inner;
  for (size_t k = 0; k < N; ++k) inner[k] = layout.strides[k].back();
  // The outer axes (all but the innermost), walked by the odometer.
  const Shape outer_shape(layout.shape.begin(), layout.shape.end() - 1);
  std::array<Strides, N> outer_strides;
  for (size_t k = 0; k < N; ++k) outer_strides[k].assign(layout.strides[k].begin(), layout.strides[k].end() - 1);

  const bool parallel = allow_parallel && total >= kParallelThreshold && !omp_in_parallel();
  const int64_t piece = parallel ? std::min(n, kRowPiece) : n;
  const int64_t pieces_per_row = (n + piece - 1) / piece;
  const int64_t items = rows * pieces_per_row;  // work items: (row, piece) pairs in row-major order

  // Runs work items [begin, end): each thread takes one contiguous range, so the odometer seeks only once.
  auto run = [&](int64_t begin, int64_t end) {
    if (begin >= end) return;
    Odometer<N> odo(outer_shape, outer_strides);
    odo.seek(begin / pieces_per_row);
    int64_t p = begin % pieces_per_row;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t start = p * piece;
      std::array<char*, N> ptr;
      for (size_t k = 0; k < N; ++k) ptr[k] = base[k] + (odo.offset[k] + start * inner[k]) * itemsize[k];
      fn.call(fn.ctx, ptr, std::min(piece, n - start), inner);
      if (++p == pieces_per_row) {
        p = 0;
        odo.next();
      }
    }
  };

  if (!parallel) {
    run(0, items);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    run(items * t / threads, items * (t + 1) / threads);
  }
}

// Calls fn(ptr, n, stride) for every row of `layout`, where ptr[k] points at the row's first element of
// operand k (base[k] + offset * itemsize[k]), n is the row length and stride[k] the inner step in elements.
// fn may run concurrently on different rows (it must only touch its own row).
template <size_t N, typename RowFn>
void for_each_row(const RowLayout<N>& layout, const std::array<char*, N>& base,
                  const std::array<int64_t, N>& itemsize, RowFn&& fn, bool allow_parallel = true) {
  using F = std::remove_reference_t<RowFn>;
  RowFnRef<N> ref{[](void* ctx, const std::array<char*, N>& ptr, int64_t n, const std::array<int64_t, N>& stride) {
                    (*static_cast<F*>(ctx))(ptr, n, stride);
                  },
                  const_cast<void*>(static_cast<const void*>(&fn))};
  walk_rows<N>(layout, base, itemsize, ref, allow_parallel);
}

// The common case: operands are whole tensors of one shape (operand 0's), each with its own strides.
template <size_t N, typename RowFn>
void for_each_row(const std::array<Tensor, N>& operands, RowFn&& fn, bool allow_parallel = true) {
  std::array<Strides, N> strides;
  std::array<char*, N> base;
  std::array<int64_t, N> itemsize;
  for (size_t k = 0; k < N; ++k) {
    if (operands[k].shape() != operands[0].shape()) {
      throw std::logic_error("for_each_row: operand shapes differ (" + shape_str(operands[k].shape()) + " vs " +
                             shape_str(operands[0].shape()) + ")");
    }
    strides[k] = operands[k].strides();
    base[k] = static_cast<char*>(operands[k].raw_data());
    itemsize[k] = static_cast<int64_t>(operands[k].itemsize());
  }
  for_each_row<N>(coalesce<N>(operands[0].shape(), strides), base, itemsize, fn, allow_parallel);
}

}  // namespace glance::cpu
