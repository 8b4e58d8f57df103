// CpuBackend, part 6: index_select, gather and scatter_add, on any strided views. Index tensors are int64
// and already bounds-checked by the op layer (tensor/ops_join_index.cpp).
//
// The trick that keeps these short: give the indexed operand a stride of 0 along `axis`, so that it walks
// in step with the others (same shape), and add index * (its real axis stride) per element. Then the row
// walker of strided_loop.h does all the work, coalescing included.
#include <stdexcept>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"

namespace glance {

using cpu::for_each_row;

namespace {

Strides without_axis(const Strides& s, int64_t axis) {
  Strides r = s;
  r.erase(r.begin() + axis);
  return r;
}

Strides zero_axis(const Strides& s, int64_t axis) {
  Strides r = s;
  r[axis] = 0;
  return r;
}

char* base_of(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

// out[..., i, ...] = in[..., index[i], ...]: for each i, one slice (all axes but `axis`) is copied.
template <typename T>
void index_select_typed(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  Shape slice_shape = out.shape();
  slice_shape.erase(slice_shape.begin() + axis);
  const auto layout = cpu::coalesce<2>(slice_shape, {without_axis(out.strides(), axis), without_axis(in.strides(), axis)});
  const int64_t count = index.numel(), slice = numel_of(slice_shape);
  const int64_t* idx = index.data<int64_t>();
  const int64_t idx_step = index.strides()[0];
  const int64_t out_step = out.strides()[axis], in_step = in.strides()[axis];
  const int64_t size = sizeof(T);
  auto copy_row = [](const std::array<char*, 2>& p, int64_t n, const std::array<int64_t, 2>& s) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* x = reinterpret_cast<const T*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = x[i];
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = x[i * s[1]];
    }
  };
  // Big slices: one after the other, each copied in parallel. Small slices (an embedding lookup of
  // short rows): the selected indices are shared among threads instead.
  const bool per_index_parallel = slice < cpu::kParallelThreshold && count * slice >= cpu::kParallelThreshold;
#pragma omp parallel for schedule(static) if (per_index_parallel)
  for (int64_t i = 0; i < count; ++i) {
    std::array<char*, 2> base{base_of(out) + i * out_step * size, base_of(in) + idx[i * idx_step] * in_step * size};
    for_each_row<2>(layout, base, {size, size}, copy_row, !per_index_parallel);
  }
}

}  // namespace

void CpuBackend::index_select(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  const op_profile::Scope profile_scope(OpKind::Indexing);
  index.check_dtype(DType::Int64, "cpu index_select (index)");
  GLANCE_DISPATCH(out.dtype(), T, { index_select_typed<T>(out, in, axis, index); });
}

// out[i][j][k] = in[i][index[i][j][k]][k] (axis 1); index has out's shape.
void CpuBackend::gather(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) {
  const op_profile::Scope profile_scope(OpKind::Indexing);
  index.check_dtype(DType::Int64, "cpu gather (index)");
  const int64_t in_step = in.strides()[axis];
  const auto layout = cpu::coalesce<3>(out.shape(), {out.strides(), index.strides(), zero_axis(in.strides(), axis)});
  GLANCE_DISPATCH(out.dtype(), T, {
    for_each_row<3>(layout, {base_of(out), base_of(index), base_of(in)}, {int64_t(sizeof(T)), 8, int64_t(sizeof(T))},
                    [in_step](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& s) {
                      T* o = reinterpret_cast<T*>(p[0]);
                      const int64_t* idx = reinterpret_cast<const int64_t*>(p[1]);
                      const T* x = reinterpret_cast<const T*>(p[2]);
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = x[i * s[2] + idx[i * s[1]] * in_step];
                    });
  });
}

// out[i][index[i][j][k]][k] += src[i][j][k] (axis 1); index has src's shape. Serial: two source elements
// may land on the same output element, and a serial loop needs no atomics and adds in a fixed order.
void CpuBackend::scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) {
  const op_profile::Scope profile_scope(OpKind::Indexing);
  index.check_dtype(DType::Int64, "cpu scatter_add (index)");
  const int64_t out_step = out.strides()[axis];
  const auto layout = cpu::coalesce<3>(src.shape(), {src.strides(), index.strides(), zero_axis(out.strides(), axis)});
  GLANCE_DISPATCH(out.dtype(), T, {
    for_each_row<3>(
        layout, {base_of(src), base_of(index), base_of(out)}, {int64_t(sizeof(T)), 8, int64_t(sizeof(T))},
        [out_step](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& s) {
          const T* x = reinterpret_cast<const T*>(p[0]);
          const int64_t* idx = reinterpret_cast<const int64_t*>(p[1]);
          T* o = reinterpret_cast<T*>(p[2]);
          for (int64_t i = 0; i < n; ++i) {
            T& dst = o[i * s[2] + idx[i * s[1]] * out_step];
            dst = T(dst + x[i * s[0]]);
          }
        },
        /*allow_parallel=*/false);
  });
}

}  // namespace glance
