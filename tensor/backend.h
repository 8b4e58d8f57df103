// Backend: the short list of primitives a device must provide. Everything else in glance (broadcasting,
// views, autograd, layers) is composed from these, so adding a device means implementing this one list.
//
// Conventions, the same for every primitive:
//  - Tensors arrive as strided views with their shape and strides; `out` is written, inputs are read.
//  - Broadcasting is already done: inputs have exactly `out`'s shape (a broadcast axis has stride 0).
//  - Dtypes are already checked by the caller (tensor/ops.cpp), which also writes the error messages.
// The CPU implementation is tensor/cpu/cpu_backend.cpp; the CUDA one lives in cuda/.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/device.h"
#include "tensor/tensor.h"

namespace glance {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Tanh, Sigmoid, Relu, GeluTanh, GeluErf, Sin, Cos, Sign,
  LogicalNot,
};
enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,  // result has the inputs' dtype
  GeluErfGrad,                                // a * GELU'(b): GELU's backward in one pass (floats only)
  Eq, Ne, Lt, Le, Gt, Ge,                     // result is Bool
};
enum class ReduceOp { Sum, Max, Min };
enum class RandomKind { Uniform, Normal, Bernoulli };

// The state of the counter-based random generator (Philox4x32-10): a key and a position in the stream.
struct PhiloxState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // how many 128-bit blocks were used so far
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Called by backend_for() before this backend is handed out for `device`. A device backend throws here,
  // naming the device, when it cannot serve it (no GPU present, an index past the last GPU), so a
  // misplaced Device::cuda() fails with a message at the first op instead of deep inside a driver call.
  // The CPU has nothing to check.
  virtual void check_device(Device device) { (void)device; }

  // ---- memory ----
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  // Byte copies between this device and host memory (dst and src may not overlap).
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;

  // ---- elementwise ----
  virtual void fill(const Tensor& out, double value) = 0;
  // out[i] = fma(i, step, start) in double (one rounding, written out so that no compiler's contraction choice
  // changes a value between devices), converted to out's dtype (contiguous 1-D out). Made on the device, so an
  // index range costs no upload (and no wait for the GPU's queue).
  virtual void arange(const Tensor& out, double start, double step) = 0;
  virtual void copy(const Tensor& out, const Tensor& in) = 0;  // strided copy, converting the dtype
  virtual void unary(UnaryOp op, const Tensor& out, const Tensor& in) = 0;
  // out = a op b; `scalar_b` is used instead of b when b is undefined (x + 2.0 needs no tensor for 2.0).
  virtual void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double scalar_b) = 0;
  virtual void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) = 0;

  // ---- reductions ----
  // out has in's shape with the reduced axes set to 1 (keepdim form). `axes` are sorted and non-negative.
  virtual void reduce(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<int64_t>& axes) = 0;
  // out (int64) has in's shape with `axis` set to 1; the first index of the maximum (or minimum) wins.
  virtual void arg_reduce(bool is_max, const Tensor& out, const Tensor& in, int64_t axis) = 0;

  // ---- linear algebra ----
  // out[b] = a[b] @ b[b] for a: [batch, M, K], b: [batch, K, N], out: [batch, M, N] (contiguous out;
  // a and b may be any strided views, a batch stride of 0 broadcasts).
  virtual void matmul(const Tensor& out, const Tensor& a, const Tensor& b) = 0;

  // ---- rows: softmax and layer norm over the last axis of contiguous [rows, C] tensors ----
  virtual void softmax(const Tensor& out, const Tensor& in, bool log) = 0;
  // The backward of softmax rows, from its output y and the gradient dy, in one pass per row:
  //   softmax:      dx = y * (dy - sum(dy * y))       log_softmax: dx = dy - exp(y) * sum(dy)
  virtual void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) = 0;
  // out = (x - mean) * rstd * weight + bias; saves mean and rstd ([rows]) for the backward pass.
  // weight and bias may be undefined (no affine).
  virtual void layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                                  const Tensor& weight, const Tensor& bias, double eps) = 0;
  // dweight and dbias may be undefined (not wanted); they are overwritten, not accumulated.
  virtual void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                   const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight) = 0;

  // ---- indexing (index tensors are int64 and already bounds-checked by the caller) ----
  // out[..., i, ...] = in[..., index[i], ...] along `axis`.
  virtual void index_select(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) = 0;
  // out[i][j][k] = in[i][index[i][j][k]][k] (for axis 1); index has out's shape.
  virtual void gather(const Tensor& out, const Tensor& in, int64_t axis, const Tensor& index) = 0;
  // out[i][index[i][j][k]][k] += src[i][j][k] (for axis 1); index has src's shape.
  virtual void scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) = 0;

  // ---- random numbers: fills a contiguous tensor from the Philox stream at `state`. ----
  // Uniform in [a, b); Normal with mean a, std b; Bernoulli with probability a (0/1 values).
  virtual void random(RandomKind kind, const Tensor& out, double a, double b, PhiloxState state) = 0;
};

// The backend that serves a device. CPU is always registered; CUDA registers itself when built in.
Backend& backend_for(Device device);
void register_backend(DeviceType type, Backend* backend);

}  // namespace glance
