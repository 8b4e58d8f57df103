// Looking at the graph: an indented text tree and a Graphviz DOT dump of what produced a tensor.
//
//   std::cout << glance::autograd::graph_string(loss);
//   std::ofstream("graph.dot") << glance::autograd::graph_dot(loss);   // dot -Tpng graph.dot -o graph.png
#pragma once
#include <string>

#include "tensor/tensor.h"

namespace glance::autograd {

std::string graph_string(const Tensor& root);
std::string graph_dot(const Tensor& root);

}  // namespace glance::autograd
