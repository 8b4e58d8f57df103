// Example 02: autograd, micrograd-style. Builds a tiny expression, prints its graph, runs backward,
// and checks every gradient by hand and by central differences. Run: ./build/examples/02_autograd
#include <fstream>
#include <iostream>

#include "autograd/glance.h"

using namespace glance;

int main() {
  std::cout << "== 1. A tiny graph: L = (a*b + c) * f ==\n";
  Tensor a = scalar(2.0).set_requires_grad().set_name("a");
  Tensor b = scalar(-3.0).set_requires_grad().set_name("b");
  Tensor c = scalar(10.0).set_requires_grad().set_name("c");
  Tensor f = scalar(-2.0).set_requires_grad().set_name("f");
  Tensor e = a * b;  // -6
  Tensor d = e + c;  //  4
  Tensor L = d * f;  // -8
  std::cout << "L = " << L.item() << "\n\nthe graph that produced L:\n" << autograd::graph_string(L) << "\n";

  std::cout << "== 2. backward: the chain rule, from L back to the leaves ==\n";
  L.backward();
  std::cout << "dL/da = " << a.grad().item() << "   (by hand: f * b = -2 * -3 = 6)\n";
  std::cout << "dL/db = " << b.grad().item() << "   (by hand: f * a = -2 * 2 = -4)\n";
  std::cout << "dL/dc = " << c.grad().item() << "   (by hand: f = -2)\n";
  std::cout << "dL/df = " << f.grad().item() << "    (by hand: d = 4)\n\n";

  std::cout << "== 3. Gradients accumulate until you clear them ==\n";
  Tensor L2 = (a * b + c) * f;
  L2.backward();
  std::cout << "after a second backward, dL/da = " << a.grad().item() << " (6 + 6)\n";
  a.zero_grad();
  std::cout << "after zero_grad, a.grad() is " << (a.grad().defined() ? "set" : "empty") << "\n\n";

  std::cout << "== 4. A tensor example: a one-layer net, checked by gradcheck ==\n";
  Generator gen(7);
  Tensor x = ops::randn({4, 3}, DType::Float64, &gen);
  Tensor w = ops::randn({3, 2}, DType::Float64, &gen).set_requires_grad().set_name("w");
  Tensor bias = ops::randn({2}, DType::Float64, &gen).set_requires_grad().set_name("bias");
  auto net = [&](const std::vector<Tensor>& in) { return tanh(matmul(x, in[0]) + in[1]); };
  Tensor loss = sum(net({w, bias}));
  std::cout << "graph of loss:\n" << autograd::graph_string(loss);
  auto check = autograd::gradcheck(net, {w, bias});
  std::cout << "gradcheck (float64 central differences): " << (check.ok ? "ok" : check.message)
            << ", max error " << check.max_abs_error << "\n\n";

  std::cout << "== 5. NoGradGuard: nothing is recorded ==\n";
  {
    autograd::NoGradGuard no_grad;
    Tensor y = matmul(x, w);
    std::cout << "inside NoGradGuard, y.requires_grad() = " << y.requires_grad() << "\n";
  }
  std::ofstream("autograd_graph.dot") << autograd::graph_dot(loss);
  std::cout << "wrote autograd_graph.dot (render with: dot -Tpng autograd_graph.dot -o graph.png)\n";
  return 0;
}
