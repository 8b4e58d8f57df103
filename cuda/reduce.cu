// CudaBackend, part 5: reductions. out has in's shape with the reduced axes set to 1 (keepdim form).
//
// The plan is the CPU's (tensor/cpu/reduce.cpp): split the axes into kept axes (one output per position; an
// in-stride and an out-stride each) and reduced axes (folded into each output; an in-stride), and coalesce
// each group. In effect the reduced axes are permuted last: output o reduces the `count` elements
//     in[kept_offset(o) + reduced_offset(j)],  j = 0 .. count-1.
// Then one of two kernels, both grid-stride loops over work items:
//
//   (R) a warp per output   when the reduced elements of an output are one unit-stride run (sum over the last
//                           axis): the 32 lanes read j = lane, lane+32, ... (coalesced) and combine their
//                           partial results with warp shuffles. Also the general fallback.
//   (C) a thread per output when the innermost *kept* axis is unit-stride (sum over axis 0 of [N, D], over T of
//                           [B, T, C]): neighbouring threads take neighbouring outputs, so each step of their
//                           loops reads one contiguous stretch of a row.
//
// Few outputs with many elements each (the sum of a whole tensor) would leave most of the GPU idle, so the
// elements of each output are cut into `slices`: pass 1 writes one partial result per (output, slice) into a
// scratch buffer laid out [outputs, slices], and pass 2 reduces each output's slices with kernel (R). The
// number of slices depends on the shape alone, and every combination happens in a fixed order, so a result is
// the same on every run and every GPU (though not bit-identical to the CPU, which adds in another order).
//
// Accumulators, as on the CPU: float sums in double, integer sums in int64 (wrapping back to the dtype at the
// end, uint8 included); max/min in the dtype itself, propagating NaN like torch.
#include <algorithm>
#include <type_traits>

#include "cuda/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"
#include "cuda/strided.cuh"

namespace glance::cuda {

namespace {

// ---- what each op accumulates ----
template <typename T>
struct SumOp {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  __device__ static Acc init() { return Acc(0); }
  template <typename X>
  __device__ static Acc step(Acc acc, X x) { return acc + Acc(x); }
  __device__ static Acc merge(Acc a, Acc b) { return a + b; }
  __device__ static T finish(Acc a) { return T(a); }
};

template <typename T, bool IsMax>
struct ExtremeOp {
  using Acc = T;
  __device__ static T init() {
    if constexpr (std::is_floating_point_v<T>) {
      return IsMax ? -infinity<T>() : infinity<T>();
    } else {
      return IsMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
    }
  }
  // x wins if it is better, or NaN (once the accumulator is NaN nothing beats it: NaN propagates).
  __device__ static bool wins(T x, T acc) { return (IsMax ? x > acc : x < acc) || is_nan(x); }
  __device__ static T step(T acc, T x) { return wins(x, acc) ? x : acc; }
  __device__ static T merge(T a, T b) { return wins(b, a) ? b : a; }
  __device__ static T finish(T a) { return a; }
};

template <typename Op>
struct MergeFn {
  template <typename A>
  __device__ A operator()(A a, A b) const { return Op::merge(a, b); }
};

// Arguments shared by both kernels. `kept` has operand 0 = in, operand 1 = out; `reduced` has operand 0 = in.
struct Args {
  StridedLayout<2> kept;
  StridedLayout<1> reduced;
  int64_t outputs = 0, count = 0;  // outputs; elements per output
  int64_t slices = 1, chunk = 0;   // slices per output, elements per slice
};

// (R) one warp per (output, slice). Items are numbered o * slices + s.
template <typename Op, typename In, typename Out>
__global__ void reduce_warp_kernel(const In* in, Out* out, typename Op::Acc* partial, Args args) {
  using Acc = typename Op::Acc;
  const int lane = threadIdx.x & 31;
  const int64_t warp = global_thread_id() / 32, warps = global_thread_count() / 32;
  const int64_t items = args.outputs * args.slices;
  for (int64_t item = warp; item < items; item += warps) {  // the same for all lanes of a warp
    const int64_t o = item / args.slices, s = item % args.slices;
    int64_t ko[2];
    offsets_of<2>(args.kept, o, ko);
    const int64_t j1 = min(args.count, (s + 1) * args.chunk);
    Acc acc = Op::init();
    for (int64_t j = s * args.chunk + lane; j < j1; j += 32) {
      int64_t ro[1];
      offsets_of<1>(args.reduced, j, ro);
      acc = Op::step(acc, in[ko[0] + ro[0]]);
    }
    acc = warp_reduce(acc, MergeFn<Op>{});
    if (lane == 0) {
      if (args.slices == 1) {
        out[ko[1]] = Op::finish(acc);
      } else {
        partial[o * args.slices + s] = acc;
      }
    }
  }
}

// (C) one thread per (output, slice). Items are numbered s * outputs + o, so neighbouring threads take
// neighbouring outputs (and, the kept axis being unit-stride, neighbouring addresses).
template <typename Op, typename In, typename Out>
__global__ void reduce_thread_kernel(const In* in, Out* out, typename Op::Acc* partial, Args args) {
  using Acc = typename Op::Acc;
  const int64_t items = args.outputs * args.slices;
  for (int64_t item = global_thread_id(); item < items; item += global_thread_count()) {
    const int64_t s = item / args.outputs, o = item % args.outputs;
    int64_t ko[2];
    offsets_of<2>(args.kept, o, ko);
    const int64_t j1 = min(args.count, (s + 1) * args.chunk);
    Acc acc = Op::init();
    for (int64_t j = s * args.chunk; j < j1; ++j) {
      int64_t ro[1];
      offsets_of<1>(args.reduced, j, ro);
      acc = Op::step(acc, in[ko[0] + ro[0]]);
    }
    if (args.slices == 1) {
      out[ko[1]] = Op::finish(acc);
    } else {
      partial[o * args.slices + s] = acc;
    }
  }
}

// Splits `count` elements into slices of `chunk` (a multiple of `align`), at most `max_slices` of them and
// none shorter than `min_chunk`.
void plan_slices(Args& args, int64_t min_chunk, int64_t max_slices, int64_t align) {
  int64_t slices = std::clamp<int64_t>((args.count + min_chunk - 1) / min_chunk, 1, std::max<int64_t>(1, max_slices));
  int64_t chunk = (args.count + slices - 1) / slices;
  chunk = (chunk + align - 1) / align * align;
  args.chunk = std::max<int64_t>(chunk, 1);
  args.slices = std::max<int64_t>(1, (args.count + args.chunk - 1) / args.chunk);
}

template <typename Op, typename T>
void reduce_typed(const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) {
  using Acc = typename Op::Acc;
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
  const Coalesced<2> kept = coalesce<2>(kept_shape, {kept_in, kept_out});
  const Coalesced<1> reduced = coalesce<1>(red_shape, {red_in});
  Args args;
  args.kept = make_layout<2>(kept, "reduce");
  args.reduced = make_layout<1>(reduced, "reduce");
  args.outputs = kept.numel();
  args.count = reduced.numel();
  if (args.outputs == 0) return;
  if (args.count == 0) {  // the sum of nothing is 0 (max/min over an empty axis were refused by the caller)
    backend_instance()->fill(out, 0.0);
    return;
  }
  const T* x = static_cast<const T*>(in.raw_data());
  T* y = static_cast<T*>(out.raw_data());

  const bool reduced_run = reduced.shape.size() == 1 && reduced.strides[0][0] == 1;
  const bool kept_run = kept.strides[0].back() == 1 && kept.shape.back() >= 32;
  const bool by_thread = !reduced_run && kept_run;
  if (by_thread) {
    // Enough threads to fill the GPU (~64k), but no slice shorter than 256 elements.
    plan_slices(args, 256, args.outputs >= 65536 ? 1 : 65536 / args.outputs, 1);
  } else {
    // Enough warps (~16k), no slice shorter than 4096 elements, slices a multiple of the warp width.
    plan_slices(args, 4096, args.outputs >= 2048 ? 1 : 16384 / args.outputs, 32);
  }
  const int64_t items = args.outputs * args.slices;

  if (args.slices == 1) {
    if (by_thread) {
      reduce_thread_kernel<Op, T, T><<<blocks_for(items), kThreads>>>(x, y, nullptr, args);
    } else {
      reduce_warp_kernel<Op, T, T><<<blocks_for(items * 32), kThreads>>>(x, y, nullptr, args);
    }
    GLANCE_CUDA_CHECK_LAUNCH();
    return;
  }

  // Pass 1: partial results [outputs, slices].
  DeviceBuffer partial(static_cast<size_t>(items) * sizeof(Acc));
  if (by_thread) {
    reduce_thread_kernel<Op, T, T><<<blocks_for(items), kThreads>>>(x, y, partial.as<Acc>(), args);
  } else {
    reduce_warp_kernel<Op, T, T><<<blocks_for(items * 32), kThreads>>>(x, y, partial.as<Acc>(), args);
  }
  GLANCE_CUDA_CHECK_LAUNCH();

  // Pass 2: each output's slices, a unit-stride run of the buffer: output o's partials start at o * slices.
  Strides partial_strides = contiguous_strides(kept.shape);
  for (int64_t& s : partial_strides) s *= args.slices;
  Args fin;
  fin.kept = make_layout<2>(kept.shape, {partial_strides, kept.strides[1]}, "reduce");
  fin.reduced = make_layout<1>(Shape{args.slices}, {Strides{1}}, "reduce");
  fin.outputs = args.outputs;
  fin.count = args.slices;
  fin.slices = 1;
  fin.chunk = args.slices;
  reduce_warp_kernel<Op, Acc, T><<<blocks_for(args.outputs * 32), kThreads>>>(partial.as<Acc>(), y, nullptr, fin);
  GLANCE_CUDA_CHECK_LAUNCH();
}

// ---- arg_reduce ----
// Does candidate (v, i) beat (best, best_i)? A total order that gives the CPU's answer whatever order the
// candidates meet in: a NaN beats every number (the first NaN wins, as in torch), then the larger (smaller)
// value, and on ties the lower index. An index of -1 marks "no candidate yet" (a lane with no elements).
template <typename T>
__device__ __forceinline__ bool arg_beats(bool is_max, T v, int64_t i, T best, int64_t best_i) {
  if (i < 0) return false;
  if (best_i < 0) return true;
  if constexpr (std::is_floating_point_v<T>) {
    const bool vn = is_nan(v), bn = is_nan(best);
    if (vn || bn) return vn && bn ? i < best_i : vn;
  }
  if (v == best) return i < best_i;
  return is_max ? v > best : v < best;
}

// One thread (kWarp = false, short axes) or one warp (kWarp = true) per output; `kept` has operand 0 = in,
// operand 1 = out; the reduced axis has n elements `step` apart.
template <typename T, bool kWarp>
__global__ void arg_reduce_kernel(const T* in, int64_t* out, StridedLayout<2> kept, int64_t outputs, int64_t n,
                                  int64_t step, bool is_max) {
  constexpr int G = kWarp ? 32 : 1;
  const int lane = kWarp ? (threadIdx.x & 31) : 0;
  const int64_t first = global_thread_id() / G, stride = global_thread_count() / G;
  for (int64_t o = first; o < outputs; o += stride) {
    int64_t ko[2];
    offsets_of<2>(kept, o, ko);
    const T* p = in + ko[0];
    T best = T();
    int64_t best_i = -1;
    for (int64_t j = lane; j < n; j += G) {
      const T v = p[j * step];
      if (arg_beats(is_max, v, j, best, best_i)) {
        best = v;
        best_i = j;
      }
    }
    if constexpr (kWarp) {
#pragma unroll
      for (int mask = 16; mask > 0; mask >>= 1) {
        const T v = shfl_xor(best, mask);
        const int64_t i = shfl_xor(best_i, mask);
        if (arg_beats(is_max, v, i, best, best_i)) {
          best = v;
          best_i = i;
        }
      }
    }
    if (lane == 0) out[ko[1]] = best_i;
  }
}

template <typename T>
void arg_reduce_typed(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) {
  Shape kept_shape = in.shape();
  Strides kept_in = in.strides(), kept_out = out.strides();
  kept_shape.erase(kept_shape.begin() + axis);
  kept_in.erase(kept_in.begin() + axis);
  kept_out.erase(kept_out.begin() + axis);
  const Coalesced<2> kept = coalesce<2>(kept_shape, {kept_in, kept_out});
  const StridedLayout<2> layout = make_layout<2>(kept, "arg_reduce");
  const int64_t n = in.shape()[axis], step = in.strides()[axis], outputs = kept.numel();
  if (outputs == 0) return;
  const T* x = static_cast<const T*>(in.raw_data());
  int64_t* y = static_cast<int64_t*>(out.raw_data());
  if (n <= 16) {  // short axes: a warp per output would leave most lanes idle
    arg_reduce_kernel<T, false><<<blocks_for(outputs), kThreads>>>(x, y, layout, outputs, n, step, is_max);
  } else {
    arg_reduce_kernel<T, true><<<blocks_for(outputs * 32), kThreads>>>(x, y, layout, outputs, n, step, is_max);
  }
  GLANCE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) {
  require_cuda(out, "reduce");
  require_cuda(in, "reduce");
  out.check_dtype(in.dtype(), "cuda reduce (out)");
  if (op != ReduceOp::Sum) {
    for (int64_t a : axes) {
      if (in.shape()[a] == 0) throw std::invalid_argument("cuda reduce: max/min over an empty axis");
    }
  }
  GLANCE_DISPATCH(in.dtype(), T, {
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (std::is_same_v<T, bool>) {
          throw std::invalid_argument("cuda reduce: sum of bool is not supported");
        } else {
          reduce_typed<SumOp<T>, T>(out, in, axes);
        }
        break;
      case ReduceOp::Max: reduce_typed<ExtremeOp<T, true>, T>(out, in, axes); break;
      case ReduceOp::Min: reduce_typed<ExtremeOp<T, false>, T>(out, in, axes); break;
    }
  });
}

void CudaBackend::arg_reduce(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) {
  require_cuda(out, "arg_reduce");
  require_cuda(in, "arg_reduce");
  out.check_dtype(DType::Int64, "cuda arg_reduce (out)");
  if (in.shape()[axis] == 0) throw std::invalid_argument("cuda arg_reduce: empty axis");
  GLANCE_DISPATCH(in.dtype(), T, { arg_reduce_typed<T>(is_max, out, in, axis); });
}

}  // namespace glance::cuda
