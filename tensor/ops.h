// The plain math on tensors: no gradients recorded here (autograd/functions.h wraps each of these
// in a differentiable function of the same name in namespace glance).
//
// Every op checks its inputs and throws with a message that names the op and the shapes, e.g.
//   matmul: shapes [4, 3] and [5, 2] do not align (3 != 5)
// then computes through the Backend of the inputs' device (tensor/backend.h).
#pragma once
#include <vector>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace glance::ops {

// ---- creation ----
Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::cpu());  // shape []
// [start, start+step, ...) up to (not including) end.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::Int64, Device device = Device::cpu());
Tensor eye(int64_t n, DType dtype = DType::Float32, Device device = Device::cpu());
// Copies host values into a new CPU tensor of `shape` (its element count must match).
template <typename T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
template <typename T> Tensor from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{static_cast<int64_t>(values.size())});
}

// ---- copies, dtype and device ----
Tensor contiguous(const Tensor& t);  // t itself when already contiguous
Tensor clone(const Tensor& t);       // always a fresh contiguous copy
Tensor to_dtype(const Tensor& t, DType dtype);  // t itself when the dtype already matches
Tensor to_device(const Tensor& t, Device device);
void copy_(const Tensor& dst, const Tensor& src);  // dst[...] = src (src broadcast to dst; dtype converted)
void fill_(const Tensor& dst, double value);

// ---- views (share storage; see tensor/views.cpp) ----
Tensor view(const Tensor& t, const Shape& shape);     // one -1 allowed; throws if strides cannot express it
Tensor reshape(const Tensor& t, const Shape& shape);  // a view when possible, else a copy
Tensor permute(const Tensor& t, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& t, int64_t axis0, int64_t axis1);
Tensor narrow(const Tensor& t, int64_t axis, int64_t start, int64_t length);
Tensor slice(const Tensor& t, int64_t axis, int64_t start, int64_t end, int64_t step = 1);  // python t[start:end:step]
Tensor select(const Tensor& t, int64_t axis, int64_t index);  // drops the axis
Tensor expand(const Tensor& t, const Shape& shape);          // size-1 axes grow with stride 0; -1 keeps
Tensor squeeze(const Tensor& t, int64_t axis);                // the axis must have size 1
Tensor squeeze(const Tensor& t);                              // every size-1 axis
Tensor unsqueeze(const Tensor& t, int64_t axis);
Tensor flatten(const Tensor& t, int64_t start_axis = 0, int64_t end_axis = -1);

// ---- elementwise (binary ops broadcast; both operands must share a dtype) ----
Tensor unary(UnaryOp op, const Tensor& x);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, double b);  // the scalar takes a's dtype
const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond is Bool; all three broadcast
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
void add_(const Tensor& dst, const Tensor& src, double alpha = 1.0);  // dst += alpha * src, in place
void mul_(const Tensor& dst, const Tensor& src);  // dst *= src, in place (src broadcast to dst, converted to its dtype)

// ---- reductions (empty `axes` means all axes) ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Variance with `correction` (1 = unbiased, like torch.var's default; 0 = population).
Tensor var(const Tensor& x, const std::vector<int64_t>& axes = {}, int64_t correction = 1, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // int64
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim = false);
// Sums a broadcast result back down to `shape` (the gradient rule of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra ----
// NumPy semantics: 1-D operands are promoted and the added axis removed; batch axes broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- rows ----
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// The gradient of softmax (log = false) or log_softmax (log = true) along `axis`, from the op's output y
// and the incoming gradient dy (same shape, same dtype).
Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t axis = -1, bool log = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
// Normalises over the last axis. Returns {out, mean, rstd}; mean and rstd have shape x.shape[:-1].
struct LayerNormResult {
  Tensor out, mean, rstd;
};
LayerNormResult layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
struct LayerNormGrads {
  Tensor dx, dweight, dbias;
};
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, bool need_weight_grads);

// ---- joining and splitting ----
Tensor concat(const std::vector<Tensor>& tensors, int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t axis = 0);
std::vector<Tensor> split(const Tensor& x, int64_t piece_size, int64_t axis = 0);  // last piece may be shorter
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);

// ---- indexing (index tensors are int64; every index is bounds-checked) ----
// The bounds check reads the index on the host: for an index on a GPU that is a copy back and a wait for the
// GPU's queue. IndexCheck::AlreadyChecked skips it, for an index the caller has checked before (autograd's
// backward passes reuse their forward's index); an out-of-range index is then undefined behaviour.
enum class IndexCheck { Bounds, AlreadyChecked };
// Throws std::invalid_argument for an index dtype other than int64/int32, std::out_of_range naming the first
// entry outside [0, size). Reads the index on the host (free for a host index).
void check_index_bounds(const Tensor& index, int64_t size, const char* op);
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index,
                    IndexCheck check = IndexCheck::Bounds);  // index is 1-D
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index,
              IndexCheck check = IndexCheck::Bounds);  // out has index's shape
// A copy of x with src added at the positions `index` names along `axis` (torch.scatter_add).
Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src,
                   IndexCheck check = IndexCheck::Bounds);

}  // namespace glance::ops
