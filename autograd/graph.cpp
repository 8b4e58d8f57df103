#include "autograd/graph.h"

#include <functional>
#include <map>
#include <sstream>

#include "autograd/node.h"

namespace glance::autograd {

namespace {
std::string leaf_label(const TensorImpl& leaf) {
  return (leaf.name.empty() ? std::string("leaf") : leaf.name) + " " + shape_str(leaf.shape);
}
}  // namespace

std::string graph_string(const Tensor& root) {
  std::ostringstream out;
  if (!root.grad_fn()) {
    out << (root.requires_grad() ? leaf_label(root.impl()) : "(no graph: nothing requires grad)") << "\n";
    return out.str();
  }
  // Shared sub-graphs are printed once; later visits print a back-reference "(see #N)".
  std::map<const Node*, int> numbers;
  std::function<void(const Node*, int)> walk = [&](const Node* node, int depth) {
    std::string pad(2 * depth, ' ');
    if (auto it = numbers.find(node); it != numbers.end()) {
      out << pad << node->op << " (see #" << it->second << ")\n";
      return;
    }
    int n = static_cast<int>(numbers.size());
    numbers[node] = n;
    out << pad << "#" << n << " " << node->op << " -> " << shape_str(node->out_shape) << "\n";
    for (const Edge& e : node->inputs) {
      if (e.node) walk(e.node.get(), depth + 1);
      else if (e.leaf) out << pad << "  " << leaf_label(*e.leaf) << (e.leaf->requires_grad ? " (requires grad)" : "") << "\n";
      else out << pad << "  constant " << shape_str(e.shape) << "\n";
    }
  };
  walk(root.grad_fn().get(), 0);
  return out.str();
}

std::string graph_dot(const Tensor& root) {
  std::ostringstream out;
  out << "digraph glance {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n";
  std::map<const void*, int> ids;
  auto id_of = [&](const void* p) {
    auto [it, inserted] = ids.try_emplace(p, static_cast<int>(ids.size()));
    return std::make_pair(it->second, inserted);
  };
  std::function<int(const Node*)> walk = [&](const Node* node) {
    auto [id, fresh] = id_of(node);
    if (!fresh) return id;
    out << "  n" << id << " [shape=box, label=\"" << node->op << "\\n" << shape_str(node->out_shape) << "\"];\n";
    for (const Edge& e : node->inputs) {
      int child = -1;
      if (e.node) {
        child = walk(e.node.get());
      } else {
        auto [cid, cfresh] = id_of(e.leaf ? static_cast<const void*>(e.leaf.get()) : static_cast<const void*>(&e));
        child = cid;
        if (cfresh) {
          out << "  n" << cid << " [shape=ellipse, style=filled, fillcolor=" << (e.leaf ? "lightblue" : "lightgray")
              << ", label=\"" << (e.leaf ? leaf_label(*e.leaf) : "constant " + shape_str(e.shape)) << "\"];\n";
        }
      }
      out << "  n" << child << " -> n" << id << ";\n";
    }
    return id;
  };
  if (root.grad_fn()) walk(root.grad_fn().get());
  out << "}\n";
  return out.str();
}

}  // namespace glance::autograd
