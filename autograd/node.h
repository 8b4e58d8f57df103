// The autograd graph. Each recorded op leaves one Node on its output tensor (Tensor::grad_fn):
//
//      a ──┐
//          ├─ mul ──> out      out.grad_fn = Node{op "mul", inputs [edge to a, edge to b], backward}
//      b ──┘
//
// An edge says where the gradient for one input goes: into the Node that produced that input, or,
// when the input is a leaf that requires grad (a parameter), into that leaf's .grad. backward(grad_out)
// returns one gradient per input, in the order of `inputs` (undefined where none is needed).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace glance::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> node;         // the input was produced by a recorded op
  std::shared_ptr<TensorImpl> leaf;   // or the input is a leaf that requires grad
  Shape shape;                        // the input's shape: its gradient must have it
  DType dtype = DType::Float32;
  bool wanted() const { return node || leaf; }
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

struct Node {
  std::string op;            // "mul", "matmul", ... for printouts and DOT dumps
  std::vector<Edge> inputs;  // one per differentiable input, in the op's argument order
  BackwardFn backward;       // emptied after use unless the graph is retained
  Shape out_shape;
  uint64_t sequence = 0;     // creation order (later ops have larger numbers)
};

// ---- grad mode: recording on or off for this thread ----
bool grad_enabled();
class NoGradGuard {  // RAII: no recording while alive (e.g. for evaluation and optimizer steps)
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and one of the tensors requires grad: the op must record a Node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// ---- gradient-ready hook: told when a leaf's gradient is final during a backward pass ----
// While a GradReadyHook is alive on this thread, run_backward calls it once per leaf that requires grad in
// the graph, as soon as every node that feeds that leaf has run (its .grad will not change again in this pass;
// it may be unset when no gradient reached it). Data-parallel training starts the all-reduce of a bucket of
// gradients from here, overlapping it with the rest of the backward pass (dist/gradient_reducer.h).
using GradReadyFn = std::function<void(TensorImpl& leaf)>;
class GradReadyHook {  // RAII: installs `fn` for this thread, the previous hook back at scope exit
 public:
  explicit GradReadyHook(GradReadyFn fn);
  ~GradReadyHook();
  GradReadyHook(const GradReadyHook&) = delete;
  GradReadyHook& operator=(const GradReadyHook&) = delete;

 private:
  GradReadyFn previous_;
};

// Attaches a Node named `op` to `out` when needs_grad(inputs). `backward` must not capture `out` itself
// (that would be a reference cycle): capture out.detach() instead.
void record(const char* op, const std::vector<Tensor>& inputs, Tensor& out, BackwardFn backward);

}  // namespace glance::autograd
