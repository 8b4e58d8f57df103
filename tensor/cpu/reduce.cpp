// CpuBackend, part 3: reductions. out has in's shape with the reduced axes set to 1 (keepdim form).
//
// The axes are first split into two groups, each coalesced like strided_loop.h does:
//   kept axes    (walked with an in-stride and an out-stride): one output per position;
//   reduced axes (walked with an in-stride): the elements folded into each output.
// Then one of three loops runs:
//   (a) the reduced elements of each output are one contiguous run (sum over the last axis of [N, D]):
//       a per-output loop with 16 independent partial results, which GCC turns into SIMD registers
//       (without -ffast-math it may not reorder one running sum, but 16 separate ones are fine);
//       parallel over outputs.
//   (b) the innermost kept axis is contiguous in both in and out (sum over axis 0 of [N, D], or over T of
//       [B, T, C]): whole rows of in are added into a block of accumulators, vectorised along the kept
//       axis; parallel over blocks of the kept axis (and, when there are few, over slices of the rows).
//   (c) anything else: for each output, an odometer over the reduced axes.
// Float sums accumulate in double where the partial results meet (and in (b)/(c) throughout), integer sums
// in int64. Max/min propagate NaN like torch. Every result depends only on the shapes, never on the
// number of threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"

namespace glance {

using cpu::Odometer;
using cpu::RowLayout;
using cpu::kParallelThreshold;

namespace {

// ---- what each op accumulates ----
// Lane: the type of the 16 partial results in loop (a); Acc: the type results are combined in.
template <typename T>
struct SumOp {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  using Lane = std::conditional_t<std::is_same_v<T, float>, float, Acc>;  // float lanes keep 16-wide SIMD
  static Acc init() { return Acc(0); }
  template <typename A> static A step(A acc, T x) { return acc + A(x); }
  template <typename A> static A merge(A a, A b) { return a + b; }
  static T finish(Acc a) { return T(a); }
};

template <typename T, bool IsMax>
struct ExtremeOp {
  using Acc = T;
  using Lane = T;
  static T init() {
    if constexpr (std::is_floating_point_v<T>) {
      return IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    } else {
      return IsMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
    }
  }
  // x wins if it is better, or NaN (and once the accumulator is NaN, nothing beats it: NaN propagates).
  static bool wins(T x, T acc) {
    if constexpr (std::is_floating_point_v<T>) {
      return (IsMax ? x > acc : x < acc) || std::isnan(x);
    } else {
      return IsMax ? x > acc : x < acc;
    }
  }
  template <typename A> static A step(A acc, T x) { return wins(x, acc) ? x : acc; }
  template <typename A> static A merge(A a, A b) { return wins(b, a) ? b : a; }
  static T finish(Acc a) { return a; }
};

// ---- the plan: kept and reduced axes, each coalesced ----
struct Plan {
  RowLayout<2> kept;     // strides[0]: in, strides[1]: out
  RowLayout<1> reduced;  // strides[0]: in
  int64_t outputs = 1, count = 1;  // number of outputs; elements reduced into each
};

Plan make_plan(const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) {
  Shape kept_shape, red_shape;
  Strides kept_in, kept_out, red_in;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (std::binary_search(axes.begin(), axes.end(), d)) {
      red_shape.push_back(in.shape()[d]);
      red_in.push_back(in.strides()[d]);
    } else {
      kept_shape.push_back(in.shape()[d]);
      kept_in.push_back(in.strides()[d]);
      kept_out.push_back(out.strides()[d]);
    }
  }
  Plan plan;
  plan.kept = cpu::coalesce<2>(kept_shape, {kept_in, kept_out});
  plan.reduced = cpu::coalesce<1>(red_shape, {red_in});
  plan.outputs = plan.kept.numel();
  plan.count = plan.reduced.numel();
  return plan;
}

// ---- loop (a): contiguous runs ----
constexpr int kLanes = 16;
constexpr int64_t kBlock = 4096;      // lanes are folded into the Acc total every kBlock elements
constexpr int64_t kSegment = 65536;   // when outputs are few, runs are split into segments run in parallel

// Folds the contiguous run p[0..n) into an Acc.
template <typename Op, typename T>
typename Op::Acc reduce_run(const T* p, int64_t n) {
  using Lane = typename Op::Lane;
  typename Op::Acc total = Op::init();
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = std::min(kBlock, n - start);
    const T* q = p + start;
    Lane lane[kLanes];
    for (int j = 0; j < kLanes; ++j) lane[j] = Lane(Op::init());
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) lane[j] = Op::step(lane[j], q[i + j]);
    }
    for (; i < len; ++i) lane[0] = Op::step(lane[0], q[i]);
    for (int w = kLanes / 2; w > 0; w /= 2) {  // pairwise: 16 -> 8 -> 4 -> 2 -> 1
      for (int j = 0; j < w; ++j) lane[j] = Op::merge(lane[j], lane[j + w]);
    }
    total = Op::merge(total, typename Op::Acc(lane[0]));
  }
  return total;
}

template <typename Op, typename T>
void reduce_contiguous_runs(const Plan& plan, T* out, const T* in) {
  const int64_t n = plan.count;
  const bool parallel = plan.outputs * n >= kParallelThreshold;
  const int64_t segments = (n + kSegment - 1) / kSegment;
  if (plan.outputs >= 16 || segments == 1) {
#pragma omp parallel if (parallel)
    {
      Odometer<2> odo(plan.kept.shape, plan.kept.strides);
      int64_t next = -1;  // the position the odometer is at
#pragma omp for schedule(static)
      for (int64_t o = 0; o < plan.outputs; ++o) {
        if (o != next) odo.seek(o);
        out[odo.offset[1]] = Op::finish(reduce_run<Op>(in + odo.offset[0], n));
        odo.next();
        next = o + 1;
      }
    }
    return;
  }
  // Few outputs, long runs (e.g. the sum of a whole tensor): split each run into fixed segments, fold the
  // segments in parallel, then combine each output's segments in order.
  // (unique_ptr, not std::vector: std::vector<bool> packs bits and hands out proxies.)
  std::unique_ptr<typename Op::Acc[]> partial(new typename Op::Acc[plan.outputs * segments]);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t item = 0; item < plan.outputs * segments; ++item) {
    const int64_t o = item / segments, s = item % segments;
    Odometer<2> odo(plan.kept.shape, plan.kept.strides);
    odo.seek(o);
    const int64_t start = s * kSegment;
    partial[item] = reduce_run<Op>(in + odo.offset[0] + start, std::min(kSegment, n - start));
  }
  Odometer<2> odo(plan.kept.shape, plan.kept.strides);
  for (int64_t o = 0; o < plan.outputs; ++o, odo.next()) {
    typename Op::Acc acc = partial[o * segments];
    for (int64_t s = 1; s < segments; ++s) acc = Op::merge(acc, partial[o * segments + s]);
    out[odo.offset[1]] = Op::finish(acc);
  }
}

// ---- loop (b): rows added into a contiguous block of outputs ----
// Kept elements per work item: wide enough that each row is read as one long contiguous stretch (which the
// hardware prefetcher follows; short stretches 8 KB apart are not prefetched), narrow enough to give up to
// 8 work items, and never more accumulators than fit comfortably in L1.
constexpr int64_t kMaxColumns = 512;
int64_t column_block(int64_t K) { return std::clamp<int64_t>((K / 8 + 15) / 16 * 16, 64, kMaxColumns); }

template <typename Op, typename T>
void reduce_into_rows(const Plan& plan, T* out, const T* in) {
  using Acc = typename Op::Acc;
  const int64_t K = plan.kept.shape.back();  // the contiguous kept axis
  const Shape outer_shape(plan.kept.shape.begin(), plan.kept.shape.end() - 1);
  std::array<Strides, 2> outer_strides;
  for (int k = 0; k < 2; ++k) outer_strides[k].assign(plan.kept.strides[k].begin(), plan.kept.strides[k].end() - 1);
  const int64_t columns = column_block(K);
  const int64_t outer = numel_of(outer_shape), blocks = (K + columns - 1) / columns;
  const int64_t items = outer * blocks;
  // Few work items but many rows: also split the rows into slices (decided by the shape alone).
  const int64_t slices = items >= 16 ? 1 : std::clamp<int64_t>(plan.count * std::min(K, columns) / kSegment, 1, 16);
  const int64_t rows_per_slice = (plan.count + slices - 1) / slices;
  std::unique_ptr<Acc[]> partial(slices > 1 ? new Acc[slices * outer * K] : nullptr);

#pragma omp parallel for schedule(static) if (plan.outputs * plan.count >= kParallelThreshold)
  for (int64_t item = 0; item < items * slices; ++item) {
    const int64_t slice = item / items, o = (item % items) / blocks, c0 = (item % blocks) * columns;
    const int64_t width = std::min(columns, K - c0);
    Odometer<2> kept(outer_shape, outer_strides);
    kept.seek(o);
    const int64_t r0 = slice * rows_per_slice, r1 = std::min(plan.count, r0 + rows_per_slice);
    Acc acc[kMaxColumns];
    for (int64_t k = 0; k < width; ++k) acc[k] = Op::init();
    Odometer<1> row(plan.reduced.shape, plan.reduced.strides);
    row.seek(r0);
    for (int64_t r = r0; r < r1; ++r, row.next()) {
      const T* x = in + kept.offset[0] + row.offset[0] + c0;
      for (int64_t k = 0; k < width; ++k) acc[k] = Op::step(acc[k], x[k]);
    }
    if (slices == 1) {
      for (int64_t k = 0; k < width; ++k) out[kept.offset[1] + c0 + k] = Op::finish(acc[k]);
    } else {
      std::copy(acc, acc + width, partial.get() + (slice * outer + o) * K + c0);
    }
  }
  if (slices == 1) return;
  Odometer<2> kept(outer_shape, outer_strides);
  for (int64_t o = 0; o < outer; ++o, kept.next()) {
    for (int64_t k = 0; k < K; ++k) {
      Acc acc = partial[o * K + k];
      for (int64_t s = 1; s < slices; ++s) acc = Op::merge(acc, partial[(s * outer + o) * K + k]);
      out[kept.offset[1] + k] = Op::finish(acc);
    }
  }
}

// ---- loop (c): the general case ----
template <typename Op, typename T>
void reduce_general(const Plan& plan, T* out, const T* in) {
  const int64_t n = plan.reduced.shape.back(), step = plan.reduced.strides[0].back();
  const Shape outer_shape(plan.reduced.shape.begin(), plan.reduced.shape.end() - 1);
  const std::array<Strides, 1> outer_strides{Strides(plan.reduced.strides[0].begin(), plan.reduced.strides[0].end() - 1)};
  const int64_t outer_rows = numel_of(outer_shape);
#pragma omp parallel for schedule(static) if (plan.outputs * plan.count >= kParallelThreshold)
  for (int64_t o = 0; o < plan.outputs; ++o) {
    Odometer<2> kept(plan.kept.shape, plan.kept.strides);
    kept.seek(o);
    Odometer<1> row(outer_shape, outer_strides);
    typename Op::Acc acc = Op::init();
    for (int64_t r = 0; r < outer_rows; ++r, row.next()) {
      const T* x = in + kept.offset[0] + row.offset[0];
      for (int64_t i = 0; i < n; ++i) acc = Op::step(acc, x[i * step]);
    }
    out[kept.offset[1]] = Op::finish(acc);
  }
}

template <typename Op, typename T>
void reduce_typed(const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) {
  const Plan plan = make_plan(out, in, axes);
  T* o = out.data<T>();
  const T* x = in.data<T>();
  if (plan.outputs == 0) return;
  if (plan.count == 0) {  // an empty reduction: the sum of nothing is 0 (max/min are refused below)
    Odometer<2> kept(plan.kept.shape, plan.kept.strides);
    for (int64_t i = 0; i < plan.outputs; ++i, kept.next()) o[kept.offset[1]] = T(0);
    return;
  }
  const bool reduced_contiguous = plan.reduced.shape.size() == 1 && plan.reduced.strides[0][0] == 1;
  const bool kept_contiguous = plan.kept.strides[0].back() == 1 && plan.kept.strides[1].back() == 1 &&
                               plan.kept.shape.back() >= 16;
  if (reduced_contiguous) {
    reduce_contiguous_runs<Op>(plan, o, x);
  } else if (kept_contiguous) {
    reduce_into_rows<Op>(plan, o, x);
  } else {
    reduce_general<Op>(plan, o, x);
  }
}

// arg_reduce: for each position of the other axes, the index along `axis` of the max (min). The first
// one wins ties; a NaN wins over everything (the first NaN), as in torch, for both argmax and argmin.
template <typename T>
void arg_reduce_typed(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) {
  Shape kept_shape = in.shape();
  Strides kept_in = in.strides(), kept_out = out.strides();
  kept_shape.erase(kept_shape.begin() + axis);
  kept_in.erase(kept_in.begin() + axis);
  kept_out.erase(kept_out.begin() + axis);
  const RowLayout<2> kept = cpu::coalesce<2>(kept_shape, {kept_in, kept_out});
  const int64_t n = in.shape()[axis], step = in.strides()[axis], outputs = kept.numel();
  int64_t* o = out.data<int64_t>();
  const T* x = in.data<T>();
#pragma omp parallel for schedule(static) if (outputs * n >= kParallelThreshold)
  for (int64_t i = 0; i < outputs; ++i) {
    Odometer<2> pos(kept.shape, kept.strides);
    pos.seek(i);
    const T* p = x + pos.offset[0];
    T best = p[0];
    int64_t best_index = 0;
    for (int64_t j = 1; j < n; ++j) {
      const T v = p[j * step];
      bool better = is_max ? v > best : v < best;
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(best)) break;  // nothing beats the first NaN
        better = better || std::isnan(v);
      }
      if (better) {
        best = v;
        best_index = j;
      }
    }
    o[pos.offset[1]] = best_index;
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) {
  const op_profile::Scope profile_scope(OpKind::Reduce);
  if (op != ReduceOp::Sum) {
    for (int64_t a : axes) {
      if (in.shape()[a] == 0) throw std::invalid_argument("cpu reduce: max/min over an empty axis");
    }
  }
  GLANCE_DISPATCH(in.dtype(), T, {
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) {
          throw std::invalid_argument("cpu reduce: sum of bool is not supported");
        } else {
          reduce_typed<SumOp<T>, T>(out, in, axes);
        }
        break;
      case ReduceOp::Max: reduce_typed<ExtremeOp<T, true>, T>(out, in, axes); break;
      case ReduceOp::Min: reduce_typed<ExtremeOp<T, false>, T>(out, in, axes); break;
    }
  });
}

void CpuBackend::arg_reduce(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) {
  const op_profile::Scope profile_scope(OpKind::Reduce);
  if (in.shape()[axis] == 0) throw std::invalid_argument("cpu arg_reduce: empty axis");
  GLANCE_DISPATCH(in.dtype(), T, { arg_reduce_typed<T>(is_max, out, in, axis); });
}

}  // namespace glance
