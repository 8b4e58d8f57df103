// The backward engine: accumulation, graph shapes (reuse, diamonds), grad mode, detach, the checks on
// backward's arguments, freeing the graph, broadcasting and views, and the graph printouts. Every
// expected gradient here is worked out by hand.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/graph.h"
#include "autograd/node.h"

namespace {

using namespace glance;

Tensor f64(const std::vector<double>& values, const Shape& shape) { return ops::from_vector(values, shape); }

Tensor param(const std::vector<double>& values, const Shape& shape) {
  Tensor t = ops::from_vector(values, shape);
  t.set_requires_grad();
  return t;
}

Tensor param(double value) { return param({value}, {}); }

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  ASSERT_TRUE(t.defined()) << "tensor is undefined";
  std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "element " << i;
}

bool contains(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

// Runs f, expects an exception of type E, returns its message (empty on failure, with the failure recorded).
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

}  // namespace

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = param({1.0, -2.0, 3.0}, {3});
  sum(x * 2.0).backward();
  expect_values(x.grad(), {2, 2, 2});
  sum(x * x).backward();  // adds 2x
  expect_values(x.grad(), {4, -2, 8});
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x * 5.0).backward();
  expect_values(x.grad(), {5, 5, 5});
}

TEST(Engine, TensorUsedTwiceGetsBothContributions) {
  Tensor x = param({3.0, -1.5}, {2});
  Tensor y = sum(x * x);  // dy/dx = 2x: one x from each side of mul
  y.backward();
  expect_values(x.grad(), {6.0, -3.0});

  Tensor z = param(4.0);
  (z + z + z).backward();  // three uses
  EXPECT_DOUBLE_EQ(z.grad().item(), 3.0);
}

TEST(Engine, DiamondGraph) {
  //        ┌─ b = a*a ─┐
  //  x ─ a ┤           ├─ d = b*c
  //        └─ c = a+1 ─┘
  // a = 2x: d = 4x^2 (2x + 1) = 8x^3 + 4x^2, dd/dx = 24x^2 + 8x.
  for (double xv : {1.0, -0.5, 2.0}) {
    Tensor x = param(xv);
    Tensor a = x * 2.0;
    Tensor b = a * a;
    Tensor c = a + 1.0;
    Tensor d = b * c;
    EXPECT_DOUBLE_EQ(d.item(), 8 * xv * xv * xv + 4 * xv * xv);
    d.backward();
    EXPECT_DOUBLE_EQ(x.grad().item(), 24 * xv * xv + 8 * xv) << "x = " << xv;
  }
}

TEST(Engine, DeepChainDoesNotOverflow) {
  // 2000 recorded ops in a row: the engine's walk is iterative, so this must not blow the stack.
  // Whether releasing such a chain recursively is safe is the destructor's business; keep it moderate.
  Tensor x = param(1.0);
  Tensor y = x;
  for (int i = 0; i < 2000; ++i) y = y + 0.001;
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
  EXPECT_NEAR(y.item(), 3.0, 1e-9);
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = param({1.0, 2.0}, {2});
  EXPECT_TRUE(autograd::grad_enabled());
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_enabled());
    Tensor y = exp(x * 3.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_TRUE(y.is_leaf());
    {
      autograd::NoGradGuard nested;
      EXPECT_FALSE(autograd::grad_enabled());
    }
    EXPECT_FALSE(autograd::grad_enabled()) << "a nested guard must restore the outer (off) state";
  }
  EXPECT_TRUE(autograd::grad_enabled());
  Tensor z = x * 3.0;  // recording is back on
  EXPECT_TRUE(z.requires_grad());
  EXPECT_NE(z.grad_fn(), nullptr);
}

TEST(Engine, NothingRecordedWithoutRequiresGrad) {
  Tensor a = f64({1, 2}, {2});
  Tensor y = a * 2.0 + a;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  std::string msg = message_of<std::invalid_argument>([&] { sum(y).backward(); });
  EXPECT_TRUE(contains(msg, "does not require grad")) << msg;
}

TEST(Engine, DetachCutsTheGraph) {
  Tensor x = param({2.0, -1.0}, {2});
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_EQ(d.storage(), x.storage()) << "detach shares storage";

  // y = x * detach(x): only the left factor carries gradient, so dy/dx = x (not 2x).
  Tensor y = sum(x * (x * 1.0).detach());
  y.backward();
  expect_values(x.grad(), {2.0, -1.0});
}

TEST(Engine, BackwardFromNonScalarNeedsAGradient) {
  Tensor x = param({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = x * 2.0;
  std::string msg = message_of<std::invalid_argument>([&] { y.backward(); });
  EXPECT_TRUE(contains(msg, "[2, 3]")) << msg;
  EXPECT_TRUE(contains(msg, "backward")) << msg;

  // With a gradient of the right shape it works: x.grad = 2 * gradient.
  y.backward(f64({1, 0, -1, 2, 0.5, 3}, {2, 3}));
  expect_values(x.grad(), {2, 0, -2, 4, 1, 6});
}

TEST(Engine, BackwardOneElementNonScalarNeedsNoGradient) {
  Tensor x = param({1.5}, {1, 1});
  Tensor y = x * 4.0;  // shape [1, 1], one element
  y.backward();
  expect_values(x.grad(), {4.0});
  EXPECT_EQ(x.grad().shape(), (Shape{1, 1}));
}

TEST(Engine, BackwardWithWrongShapeGradientThrows) {
  Tensor x = param({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = x * 2.0;
  std::string msg = message_of<std::invalid_argument>([&] { y.backward(f64({1, 2, 3, 4, 5, 6}, {3, 2})); });
  EXPECT_TRUE(contains(msg, "[3, 2]")) << msg;
  EXPECT_TRUE(contains(msg, "[2, 3]")) << msg;
  EXPECT_FALSE(x.grad().defined()) << "a rejected backward must not touch the leaves";
}

TEST(Engine, BackwardTwiceNeedsRetainGraph) {
  {
    Tensor x = param(3.0);
    Tensor y = x * x;
    y.backward();
    EXPECT_DOUBLE_EQ(x.grad().item(), 6.0);
    std::string msg = message_of<std::runtime_error>([&] { y.backward(); });
    EXPECT_TRUE(contains(msg, "already freed")) << msg;
    EXPECT_TRUE(contains(msg, "retain_graph")) << msg;
  }
  {
    Tensor x = param(3.0);
    Tensor y = x * x;
    y.backward(Tensor(), /*retain_graph=*/true);
    EXPECT_DOUBLE_EQ(x.grad().item(), 6.0);
    y.backward(Tensor(), true);
    EXPECT_DOUBLE_EQ(x.grad().item(), 12.0);
    y.backward();  // the last one may free it
    EXPECT_DOUBLE_EQ(x.grad().item(), 18.0);
    EXPECT_THROW(y.backward(), std::runtime_error);
  }
}

TEST(Engine, BackwardOfALeafAccumulatesIntoItself) {
  Tensor x = param({1, 2}, {2});
  x.backward(f64({3, 4}, {2}));
  expect_values(x.grad(), {3, 4});
}

TEST(Engine, BroadcastInputsGetGradientsOfTheirOwnShape) {
  // a [3, 1] * b [1, 4] -> [3, 4]; L = sum:  dL/da[i] = sum_j b[j],  dL/db[j] = sum_i a[i].
  Tensor a = param({1, 2, 3}, {3, 1});
  Tensor b = param({1, -1, 2, 0.5}, {1, 4});
  sum(a * b).backward();
  ASSERT_EQ(a.grad().shape(), (Shape{3, 1}));
  ASSERT_EQ(b.grad().shape(), (Shape{1, 4}));
  expect_values(a.grad(), {2.5, 2.5, 2.5});
  expect_values(b.grad(), {6, 6, 6, 6});

  // c [4] + d [2, 3, 4]: c's gradient sums over the 6 leading positions.
  Tensor c = param({1, 2, 3, 4}, {4});
  Tensor d = param(std::vector<double>(24, 0.0), {2, 3, 4});
  sum(c + d).backward();
  ASSERT_EQ(c.grad().shape(), (Shape{4}));
  ASSERT_EQ(d.grad().shape(), (Shape{2, 3, 4}));
  expect_values(c.grad(), {6, 6, 6, 6});

  // A scalar [] against a matrix.
  Tensor s = param(2.0);
  Tensor m = param({1, 2, 3, 4}, {2, 2});
  sum(m * s).backward();
  EXPECT_EQ(s.grad().shape(), Shape{});
  EXPECT_DOUBLE_EQ(s.grad().item(), 10.0);
  expect_values(m.grad(), {2, 2, 2, 2});
}

TEST(Engine, GradientsFlowThroughViewsIntoTheRightElements) {
  // x = [[0, 1, 2], [3, 4, 5]]
  Tensor x = param({0, 1, 2, 3, 4, 5}, {2, 3});
  // narrow to columns 1..2, weight by w: x.grad = w placed in columns 1..2, zeros in column 0.
  Tensor w = f64({10, 20, 30, 40}, {2, 2});
  sum(narrow(x, 1, 1, 2) * w).backward();
  expect_values(x.grad(), {0, 10, 20, 0, 30, 40});

  // transpose: t[j][i] = x[i][j]; sum(t * v) with v [3, 2] gives x.grad[i][j] = v[j][i].
  x.zero_grad();
  Tensor v = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  sum(transpose(x, 0, 1) * v).backward();
  expect_values(x.grad(), {1, 3, 5, 2, 4, 6});

  // select row 1, then slice its columns 0 and 2.
  x.zero_grad();
  Tensor u = f64({7, 9}, {2});
  sum(slice(select(x, 0, 1), 0, 0, 3, 2) * u).backward();
  expect_values(x.grad(), {0, 0, 0, 7, 0, 9});

  // Two overlapping views of the same leaf: the contributions add where they overlap.
  x.zero_grad();
  sum(narrow(x, 1, 0, 2)).backward(Tensor(), false);
  sum(narrow(x, 1, 1, 2) * 2.0).backward();
  expect_values(x.grad(), {1, 3, 2, 1, 3, 2});

  // A view of a non-leaf: y = 2x, reshape, permute.
  x.zero_grad();
  Tensor y = x * 2.0;
  Tensor r = permute(reshape(y, {3, 2}), {1, 0});  // r[j][i] = y.flat[2i + j]
  Tensor q = f64({1, 2, 3, 4, 5, 6}, {2, 3});     // weights for r
  sum(r * q).backward();
  // y.flat[2i + j] gets q[j][i]: flat 0 <- q00=1, 1 <- q10=4, 2 <- q01=2, 3 <- q11=5, 4 <- q02=3, 5 <- q12=6
  expect_values(x.grad(), {2, 8, 4, 10, 6, 12});
}

TEST(Engine, SetRequiresGradOnIntegerTensorThrows) {
  Tensor i = ops::arange(0, 4);  // int64
  std::string msg = message_of<std::invalid_argument>([&] { i.set_requires_grad(); });
  EXPECT_TRUE(contains(msg, "int64")) << msg;
  Tensor b = ops::from_vector(std::vector<bool>{true, false});
  EXPECT_THROW(b.set_requires_grad(), std::invalid_argument);
  EXPECT_NO_THROW(i.set_requires_grad(false));  // turning it off is always fine
}

TEST(Engine, SetRequiresGradOnNonLeafThrows) {
  Tensor x = param(1.0);
  Tensor y = x * 2.0;
  EXPECT_THROW(y.set_requires_grad(false), std::invalid_argument);
}

TEST(Engine, MicrogradExample) {
  // Karpathy's micrograd walkthrough:
  //   a = 2, b = -3, c = 10, e = a*b = -6, d = e + c = 4, f = -2, L = d*f = -8
  //   dL/dd = f = -2, dL/df = d = 4, dL/de = dL/dc = -2, dL/da = -2*b = 6, dL/db = -2*a = -4
  Tensor a = param(2.0).set_name("a");
  Tensor b = param(-3.0).set_name("b");
  Tensor c = param(10.0).set_name("c");
  Tensor f = param(-2.0).set_name("f");
  Tensor e = a * b;
  Tensor d = e + c;
  Tensor L = d * f;
  EXPECT_DOUBLE_EQ(L.item(), -8.0);
  L.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 6.0);
  EXPECT_DOUBLE_EQ(b.grad().item(), -4.0);
  EXPECT_DOUBLE_EQ(c.grad().item(), -2.0);
  EXPECT_DOUBLE_EQ(f.grad().item(), 4.0);
  // Intermediate results keep no .grad of their own.
  EXPECT_FALSE(e.grad().defined());
  EXPECT_FALSE(d.grad().defined());
}

TEST(Engine, MicrogradNeuron) {
  // o = tanh(x1*w1 + x2*w2 + b) with micrograd's numbers: n = 0.8813735870195432, o = tanh(n) = 0.7071...
  // do/dn = 1 - o^2 = 0.5; dx1 = w1 * 0.5 = -1.5, dw1 = x1 * 0.5 = 1.0, dx2 = w2 * 0.5 = 0.5, dw2 = 0.
  Tensor x1 = param(2.0), x2 = param(0.0), w1 = param(-3.0), w2 = param(1.0), b = param(6.8813735870195432);
  Tensor o = tanh(x1 * w1 + x2 * w2 + b);
  EXPECT_NEAR(o.item(), 0.7071067811865476, 1e-12);
  o.backward();
  EXPECT_NEAR(x1.grad().item(), -1.5, 1e-12);
  EXPECT_NEAR(w1.grad().item(), 1.0, 1e-12);
  EXPECT_NEAR(x2.grad().item(), 0.5, 1e-12);
  EXPECT_NEAR(w2.grad().item(), 0.0, 1e-12);
  EXPECT_NEAR(b.grad().item(), 0.5, 1e-12);
}

TEST(Engine, KinksAndTiesFollowTorchsConventions) {
  // relu'(0) = 0 and abs'(0) = 0 (sign(0) = 0).
  Tensor r = param({-1.0, 0.0, 2.0}, {3});
  sum(relu(r)).backward();
  expect_values(r.grad(), {0, 0, 1});
  Tensor a = param({-1.0, 0.0, 2.0}, {3});
  sum(abs(a)).backward();
  expect_values(a.grad(), {-1, 0, 1});
  // maximum / minimum of equal values: half the gradient to each side.
  Tensor x = param({1.0, 2.0, 3.0}, {3});
  Tensor y = param({1.0, 5.0, 0.0}, {3});
  sum(maximum(x, y) + minimum(x, y) * 10.0).backward();
  expect_values(x.grad(), {5.5, 10, 1});
  expect_values(y.grad(), {5.5, 1, 10});
  // max / min reductions: tied extremes share the gradient evenly.
  Tensor m = param({1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, -1.0}, {2, 4});
  sum(max(m, {1})).backward();
  expect_values(m.grad(), {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
  m.zero_grad();
  min(m).backward();  // a single global minimum
  expect_values(m.grad(), {0, 0, 0, 0, 0, 0, 0, 1});
}

TEST(Engine, InputsThatNeedNoGradGetNone) {
  Tensor x = param({1, 2}, {2});
  Tensor k = f64({3, 4}, {2});  // a constant
  sum(x * k).backward();
  expect_values(x.grad(), {3, 4});
  EXPECT_FALSE(k.grad().defined());
}

TEST(Engine, Float32LeafGetsFloat32Gradient) {
  Tensor x = ops::from_vector(std::vector<float>{1.0f, 2.0f}, {2});
  x.set_requires_grad();
  sum(x * x).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::Float32);
  std::vector<float> g = x.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(g[0], 2.0f);
  EXPECT_FLOAT_EQ(g[1], 4.0f);
}

TEST(Engine, GradientThroughToDtypeComesBackInTheLeafsDtype) {
  Tensor x = param({1.0, -2.0}, {2});
  Tensor y = sum(to_dtype(x, DType::Float32) * 3.0);
  EXPECT_EQ(y.dtype(), DType::Float32);
  y.backward();
  EXPECT_EQ(x.grad().dtype(), DType::Float64);
  expect_values(x.grad(), {3, 3});
}

TEST(Engine, GraphStringAndDotNameOpsAndLeaves) {
  Tensor a = param({1, 2}, {2}).set_name("alpha");
  Tensor b = param({3, 4}, {2}).set_name("beta");
  Tensor loss = sum(exp(a * b) + a);

  std::string text = autograd::graph_string(loss);
  for (const char* piece : {"sum", "add", "exp", "mul", "alpha", "beta", "[2]"}) {
    EXPECT_TRUE(contains(text, piece)) << "graph_string lacks '" << piece << "':\n" << text;
  }

  std::string dot = autograd::graph_dot(loss);
  EXPECT_TRUE(contains(dot, "digraph")) << dot;
  EXPECT_TRUE(contains(dot, "->")) << dot;
  for (const char* piece : {"sum", "add", "exp", "mul", "alpha", "beta"}) {
    EXPECT_TRUE(contains(dot, piece)) << "graph_dot lacks '" << piece << "':\n" << dot;
  }
  // Each leaf appears once in the DOT graph even though `a` feeds two ops.
  size_t first = dot.find("alpha");
  EXPECT_EQ(dot.find("alpha", first + 1), std::string::npos) << dot;

  // A tensor with no graph prints as such.
  EXPECT_TRUE(contains(autograd::graph_string(f64({1}, {1})), "no graph"));
}

TEST(Engine, RecordOnlyWhenAnInputRequiresGrad) {
  Tensor x = param({1, 2}, {2});
  Tensor k = f64({1, 1}, {2});
  Tensor out = ops::binary(BinaryOp::Add, k, 1.0);
  autograd::record("noop", {k}, out, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  EXPECT_EQ(out.grad_fn(), nullptr);
  Tensor out2 = ops::binary(BinaryOp::Add, x, 1.0);
  autograd::record("custom", {k, x}, out2, [](const Tensor& g) -> std::vector<Tensor> { return {Tensor(), g}; });
  ASSERT_NE(out2.grad_fn(), nullptr);
  EXPECT_EQ(out2.grad_fn()->op, "custom");
  EXPECT_EQ(out2.grad_fn()->inputs.size(), 2u);
  EXPECT_FALSE(out2.grad_fn()->inputs[0].wanted());
  EXPECT_TRUE(out2.grad_fn()->inputs[1].wanted());
  sum(out2).backward();
  expect_values(x.grad(), {1, 1});
}

TEST(Engine, ABackwardRuleWithTheWrongShapeIsNamed) {
  Tensor x = param({1, 2, 3}, {3});
  Tensor out = ops::binary(BinaryOp::Mul, x, 2.0);
  autograd::record("bad_rule", {x}, out, [](const Tensor& g) -> std::vector<Tensor> {
    return {ops::sum(g, {}, true)};  // [1] instead of [3]
  });
  std::string msg = message_of<std::logic_error>([&] { sum(out).backward(); });
  EXPECT_TRUE(contains(msg, "bad_rule")) << msg;
}
