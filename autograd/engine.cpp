// The backward engine: walk the graph from the output in reverse topological order, call each Node's
// backward with the gradient that reached it, and route the results along its edges.
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "tensor/ops.h"

namespace glance::autograd {

namespace {
thread_local bool g_grad_enabled = true;
thread_local GradReadyFn g_grad_ready;
std::atomic<uint64_t> g_sequence{0};
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

GradReadyHook::GradReadyHook(GradReadyFn fn) : previous_(std::move(g_grad_ready)) { g_grad_ready = std::move(fn); }
GradReadyHook::~GradReadyHook() { g_grad_ready = std::move(previous_); }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  return std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return t.defined() && t.requires_grad(); });
}

void record(const char* op, const std::vector<Tensor>& inputs, Tensor& out, BackwardFn backward) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->backward = std::move(backward);
  node->out_shape = out.shape();
  node->sequence = g_sequence++;
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined()) {
      e.shape = t.shape();
      e.dtype = t.dtype();
      if (t.requires_grad()) {
        if (t.grad_fn()) e.node = t.grad_fn();
        else e.leaf = t.impl_ptr();
      }
    }
    node->inputs.push_back(std::move(e));
  }
  // The output may be a view sharing storage with an input, but it is a handle of its own: give it
  // its own history without touching the input's.
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
}

namespace {

// Depth-first post-order from the root emits each node after all of its inputs' nodes. Reversed, every
// node comes before the nodes it reads from, so when a node runs, every op that consumed its output has
// already added its share of the gradient. (Iterative, so a deep graph cannot overflow the stack.)
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> post;
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      Node* child = node->inputs[next++].node.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  std::reverse(post.begin(), post.end());
  return post;
}

void check_gradient(const Tensor& g, const Shape& shape, const std::string& where) {
  if (g.shape() != shape) {
    throw std::logic_error("backward: " + where + " produced a gradient of shape " + shape_str(g.shape()) +
                           " for an input of shape " + shape_str(shape));
  }
}

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  Tensor grad = g.dtype() == leaf.dtype ? g : ops::to_dtype(g, leaf.dtype);
  if (!leaf.grad) {
    // A fresh copy: the gradient tensor may be shared with other inputs' gradients (add passes the
    // same tensor to both sides), and optimizers modify .grad in place.
    leaf.grad = ops::clone(grad).impl_ptr();
  } else {
    ops::add_(Tensor(leaf.grad), grad);
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  if (!root.requires_grad()) {
    throw std::invalid_argument("backward: the tensor " + shape_str(root.shape()) +
                                " does not require grad (no input of its graph has requires_grad set)");
  }
  Tensor g = gradient;
  if (!g.defined()) {
    if (root.numel() != 1) {
      throw std::invalid_argument("backward: a gradient must be given for a non-scalar output of shape " +
                                  shape_str(root.shape()));
    }
    g = ops::ones_like(root);
  }
  if (g.dtype() != root.dtype()) {
    throw std::invalid_argument(std::string("backward: gradient of dtype ") + dtype_name(g.dtype()) +
                                " does not match the output's dtype " + dtype_name(root.dtype()));
  }
  if (g.shape() != root.shape()) {
    throw std::invalid_argument("backward: gradient of shape " + shape_str(g.shape()) +
                                " does not match the output's shape " + shape_str(root.shape()));
  }
  NoGradGuard no_grad;  // the backward rules themselves are not recorded
  if (root.is_leaf()) {
    accumulate_into_leaf(root.impl(), g);
    if (g_grad_ready) g_grad_ready(root.impl());
    return;
  }
  Node* root_node = root.grad_fn().get();
  std::unordered_map<Node*, Tensor> pending{{root_node, g}};
  const std::vector<Node*> order = topological_order(root_node);
  // With a gradient-ready hook: how many nodes still feed each leaf. A leaf is final once its count is 0.
  std::unordered_map<TensorImpl*, int64_t> feeders;
  if (g_grad_ready) {
    for (Node* node : order) {
      for (const Edge& e : node->inputs) if (e.leaf) ++feeders[e.leaf.get()];
    }
  }
  auto node_done = [&](Node* node) {
    if (!g_grad_ready) return;
    for (const Edge& e : node->inputs) {
      if (e.leaf && --feeders[e.leaf.get()] == 0) g_grad_ready(*e.leaf);
    }
  };
  for (Node* node : order) {
    auto it = pending.find(node);
    if (it == pending.end()) {  // no gradient reached this node
      node_done(node);
      continue;
    }
    Tensor grad_out = it->second;
    pending.erase(it);
    if (!node->backward) {
      throw std::runtime_error("backward: the graph through '" + node->op +
                               "' was already freed by an earlier backward; pass retain_graph=true to that call");
    }
    std::vector<Tensor> grads = node->backward(grad_out);
    if (grads.size() != node->inputs.size()) {
      throw std::logic_error("backward: '" + node->op + "' returned " + std::to_string(grads.size()) +
                             " gradients for " + std::to_string(node->inputs.size()) + " inputs");
    }
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& edge = node->inputs[i];
      if (!edge.wanted() || !grads[i].defined()) continue;
      check_gradient(grads[i], edge.shape, "'" + node->op + "' (input " + std::to_string(i) + ")");
      if (edge.node) {
        auto [slot, inserted] = pending.try_emplace(edge.node.get(), grads[i]);
        if (!inserted) slot->second = ops::binary(BinaryOp::Add, slot->second, grads[i]);
      } else {
        accumulate_into_leaf(*edge.leaf, grads[i]);
      }
    }
    if (!retain_graph) node->backward = nullptr;  // frees the tensors the rule had saved
    node_done(node);
  }
}

}  // namespace glance::autograd

namespace glance {
void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::run_backward(*this, gradient, retain_graph);
}
}  // namespace glance
