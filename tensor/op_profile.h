// Time per kind of op: where a training step's time goes (bench_train_step --profile).
//
//   op_profile::start();                 // this thread's backend calls are timed from now on
//   ... a training step ...
//   op_profile::Totals t = op_profile::stop();
//   t.seconds[int(OpKind::Gemm)]        -> seconds spent inside the CPU backend's matmul
//
// The CPU backend opens an op_profile::Scope at the top of each of its methods (tensor/cpu/). Only the
// outermost scope on the thread that called start() counts: an attention kernel that calls the GEMM counts as
// attention, and the worker threads of a parallel region are inside their caller's scope already. What is not
// inside any scope (building the autograd graph, shape logic, allocation outside a kernel) is the caller's to
// work out: the step's wall time minus the sum of the kinds.
//
// Cheap when off: a Scope reads one relaxed atomic flag and a thread_local. The times are host times: on a
// device that queues work (CUDA) they measure the launch, not the kernel, so only the CPU backend opens scopes.
#pragma once
#include <array>
#include <cstdint>

namespace glance {

enum class OpKind {
  Gemm,         // matmul
  Attention,    // the attention kernels (their products included)
  LayerNorm,    // layer norm forward and backward, residual + layer norm
  Gelu,         // GELU and its gradient, bias + GELU
  Softmax,      // softmax rows and their backward, softmax + cross-entropy
  Copy,         // strided copies and dtype conversions
  Elementwise,  // the other unary and binary ops, where, fill, arange
  Reduce,       // sums, max, min, argmax over axes
  Indexing,     // index_select, gather, scatter_add
  Random,       // the Philox fills (dropout masks, initialisation)
  Optimizer,    // the fused optimizer step
  Memory,       // allocation and release of tensor storage, host copies
};
constexpr int kOpKinds = 12;
const char* op_kind_name(OpKind kind);  // "gemm", "attention", ...

namespace op_profile {

struct Totals {
  std::array<double, kOpKinds> seconds{};
  std::array<int64_t, kOpKinds> calls{};
};

void start();     // zeroes the totals; the calling thread is the one whose scopes count
Totals stop();    // the totals since start(); scopes stop counting
bool active();

class Scope {
 public:
  explicit Scope(OpKind kind) : kind_(kind), counting_(active() && enter()) {}
  ~Scope() {
    if (counting_) leave(kind_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool enter();           // true when this is the outermost scope on the profiled thread (starts its clock)
  void leave(OpKind kind);
  OpKind kind_;
  bool counting_;
};

}  // namespace op_profile
}  // namespace glance
