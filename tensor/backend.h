// Backend: the short list of primitives a device must provide. Everything else in glance (broadcasting,
// views, autograd, layers) is composed from these, so adding a device means implementing this one list.
//
// Conventions, the same for every primitive:
//  - Tensors arrive as strided views with their shape and strides; `out` is written, inputs are read.
//  - Broadcasting is already done: inputs have exactly `out`'s shape (a broadcast axis has stride 0).
//  - Dtypes are already checked by the caller (tensor/ops.cpp), which also writes the error messages.
// The CPU implementation is tensor/cpu/cpu_backend.cpp; the CUDA one lives in cuda/.
//
// After the primitives come the optional methods (virtual, not pure): packed attention and a few fused ops.
// Their default implementations (tensor/attention_default.cpp, tensor/fused_default.cpp) compose the
// primitives, so a new device works as soon as its primitives do; a device overrides the ones it can do
// faster (the CPU: all of them, tensor/cpu/attention.cpp and tensor/cpu/fused.cpp; CUDA: all of them,
// cuda/fused.cu and cuda/attention/attention_backend.cpp). They record no autograd history: nn records the nodes
// (nn/fused.cpp, nn/attention/kernel.cpp).
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

// ---- the types of the optional methods ----

// The fused ops a backend may do in one pass where the composition of primitives makes several.
enum class FusedOp { BiasGelu, ResidualLayerNorm, SoftmaxCrossEntropy, AdamWStep };

struct ResidualLayerNormResult {
  Tensor out;   // LN(x + residual) * weight + bias, x's shape
  Tensor sum;   // x + residual (the next block's residual input), x's shape
  Tensor mean;  // [rows], for layer_norm_backward (rows = x.numel() / C)
  Tensor rstd;  // [rows]: 1 / sqrt(var + eps)
};

struct SoftmaxCrossEntropyResult {
  Tensor loss;     // [N]: the per-row loss (reduce it as you like; nothing is averaged here)
  Tensor dlogits;  // [N, C]: d loss[i] / d logits[i, :] = softmax(logits[i]) - (1 - s) onehot(label i) - s / C
};

struct AdamWParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // the step being taken, counted from 1 (for the bias corrections)
};

// The clips of a packed sequence: clip b owns tokens [offsets[b], offsets[b + 1]). Attention stays inside
// a clip. cu_seqlens holds the same offsets as int32 [B + 1] on the tensors' device (FlashAttention's name
// and layout), for kernels that read them there; a backend that does not need it may ignore it.
struct AttentionClips {
  std::vector<int64_t> offsets;
  Tensor cu_seqlens;
};

// What the attention core computes in: float32 (or float64 where the device has it) as given, or q, k, v
// rounded to a 16-bit type for tensor cores with float32 accumulation (inputs and outputs stay float32).
enum class AttentionPrecision { Full, BFloat16, Float16 };

struct AttentionOptions {
  double scale = 1.0;  // softmax(q k^T * scale) v
  AttentionPrecision precision = AttentionPrecision::Full;  // Full: the inputs' own dtype
  bool deterministic = false;  // the same bits on every run (a device may need a slower backward for it)
  bool backward_follows = false;  // a backward pass will come: a device refuses now what it could not do then
};

struct AttentionForwardResult {
  Tensor out;  // [H, N, d]
  // What the device's backward needs besides q, k, v and out, which the caller keeps for it: the rows'
  // log-sum-exp of the scaled scores ([H, N], the default and the tiled kernels), or the probabilities
  // themselves (the CPU's short clips), or the 16-bit copies a mixed-precision kernel worked on.
  std::vector<Tensor> saved;
};

struct AttentionGradients {
  Tensor dq, dk, dv;  // each [H, N, d]
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

  // ---- optional: attention over a packed sequence (default: tensor/attention_default.cpp) ----
  // softmax(q k^T * scale) v inside each clip. q, k, v: contiguous [H, N, d] of one floating dtype, N the
  // clips' total tokens. The default materialises each clip's [H, L, L] scores and saves the rows'
  // log-sum-exp; its backward recomputes the scores from it. A device throws std::invalid_argument for what it
  // cannot do (a dtype, a head dim, a precision).
  virtual AttentionForwardResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                   const AttentionClips& clips, const AttentionOptions& options);
  // From the forward's inputs, its result and the gradient dout of out ([H, N, d]).
  virtual AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                                const AttentionForwardResult& forward, const AttentionClips& clips,
                                                const AttentionOptions& options);

  // ---- optional: fused ops (default: tensor/fused_default.cpp, the composition of primitives) ----
  // True when this backend does `op` faster than the default composition. nn then takes the fused path
  // (one autograd node around the method) instead of composing the op itself; false keeps nn's composition,
  // whose results may differ from the fused path in the last bits.
  virtual bool has_fused(FusedOp op) const { return false; }
  // gelu_erf(x + bias) for x [..., C], bias [C]; out has x's shape.
  virtual Tensor bias_gelu(const Tensor& x, const Tensor& bias);
  // Its backward for x: dy * gelu_erf'(x + bias), the pre-activation recomputed rather than stored (the bias
  // gradient is the caller's row sum of it).
  virtual Tensor bias_gelu_backward(const Tensor& dy, const Tensor& x, const Tensor& bias);
  // sum = x + residual (one shape and dtype, [..., C]) and out = LN(sum) * weight + bias over the last axis
  // (weight, bias [C] or undefined), with the row statistics that layer_norm_backward takes.
  virtual ResidualLayerNormResult residual_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                      const Tensor& bias, double eps);
  // logits [N, C], labels int64 or int32 [N], label smoothing s in [0, 1]:
  //   loss_i = (1 - s) (-log p_i[label_i]) - s mean_j log p_i[j]
  // A label outside [0, C) gives its row a NaN loss and NaN gradients (so the mistake shows), not a wild read.
  virtual SoftmaxCrossEntropyResult softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                                          double label_smoothing);
  // One AdamW step on one parameter, in place (contiguous param, grad, m, v of one shape and floating dtype):
  //   p = p * (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
  //   p = p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
  virtual void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                          const AdamWParams& params);
};

// The backend that serves a device. CPU is always there; CUDA is found when the program links glance_cuda
// (glance::linked_cuda_backend, tensor/device.cpp). Registering a
// backend for the CPU replaces the built-in one (a test installs a subclass that overrides an optional
// method; nullptr puts the built-in one back).
Backend& backend_for(Device device);
void register_backend(DeviceType type, Backend* backend);

}  // namespace glance
