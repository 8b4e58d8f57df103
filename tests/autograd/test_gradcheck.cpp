// Gradient checks: for every differentiable function in autograd/functions.h, the analytic gradient
// (the op's backward rule) must match central differences in float64. One TEST per op, so a failure
// names the rule that is wrong.
//
// Inputs are small float64 leaves drawn from a fixed Generator; views and non-contiguous layouts are made
// inside the checked function (gradcheck wants contiguous leaves). Index tensors, masks and conditions are
// captured by the lambda: they are constants, not inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"

namespace {

using namespace glance;
using autograd::GradcheckOptions;
using autograd::GradcheckResult;
using Inputs = std::vector<Tensor>;

constexpr DType F64 = DType::Float64;

// N(0, 1) float64 leaf that requires grad.
Tensor randn_leaf(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  Tensor t = ops::randn(shape, F64, &gen);
  t.set_requires_grad();
  return t;
}

// Uniform [low, high) float64 leaf that requires grad.
Tensor uniform_leaf(const Shape& shape, double low, double high, uint64_t seed) {
  Generator gen(seed);
  Tensor t = ops::uniform(shape, low, high, F64, &gen);
  t.set_requires_grad();
  return t;
}

// Values with |x| in [0.3, 1.5) and mixed signs: away from the kinks of abs and relu at 0.
Tensor away_from_zero_leaf(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  Tensor t = ops::uniform(shape, 0.3, 1.5, F64, &gen);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if ((i * 7 + 3) % 3 != 0) p[i] = -p[i];  // a fixed, irregular sign pattern
  }
  t.set_requires_grad();
  return t;
}

Tensor index_tensor(const std::vector<int64_t>& values, const Shape& shape) { return ops::from_vector(values, shape); }

Tensor bool_tensor(const std::vector<bool>& values, const Shape& shape) { return ops::from_vector(values, shape); }

#define EXPECT_GRADCHECK(f, inputs)                                     \
  do {                                                                  \
    GradcheckResult r_ = autograd::gradcheck((f), (inputs));            \
    EXPECT_TRUE(r_.ok) << r_.message;                                   \
  } while (0)

#define EXPECT_GRADCHECK_OPTS(f, inputs, opts)                          \
  do {                                                                  \
    GradcheckResult r_ = autograd::gradcheck((f), (inputs), (opts));    \
    EXPECT_TRUE(r_.ok) << r_.message;                                   \
  } while (0)

}  // namespace

// ---------------------------------------------------------------------------------------------
// elementwise, binary
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, Add) {
  auto f = [](const Inputs& x) { return add(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
}

TEST(Gradcheck, AddBroadcast) {
  // [3, 1] + [1, 4] -> [3, 4]; [4] + [2, 3, 4]: both sides are summed back to their own shapes.
  auto f = [](const Inputs& x) { return add(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1}, 1), randn_leaf({1, 4}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({4}, 3), randn_leaf({2, 3, 4}, 4)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 1, 3}, 5), randn_leaf({}, 6)}));
}

TEST(Gradcheck, Sub) {
  auto f = [](const Inputs& x) { return sub(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 1}, 3), randn_leaf({3}, 4)}));
}

TEST(Gradcheck, Mul) {
  auto f = [](const Inputs& x) { return mul(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1}, 3), randn_leaf({1, 4}, 4)}));
}

TEST(Gradcheck, Div) {
  auto f = [](const Inputs& x) { return div(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), away_from_zero_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 3), away_from_zero_leaf({3}, 4)}));
}

TEST(Gradcheck, Pow) {
  // Tensor exponent: the base must be positive for log(a) in d/db.
  auto f = [](const Inputs& x) { return pow(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.5, 2.0, 1), randn_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.5, 2.0, 3), randn_leaf({3}, 4)}));
}

TEST(Gradcheck, PowScalar) {
  auto f = [](const Inputs& x) { return pow(x[0], 2.5); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.5, 2.0, 1)}));
  auto cube = [](const Inputs& x) { return pow(x[0], 3.0); };  // integer exponent: any sign of base
  EXPECT_GRADCHECK(cube, (Inputs{randn_leaf({2, 3}, 2)}));
  auto inv = [](const Inputs& x) { return pow(x[0], -1.0); };
  EXPECT_GRADCHECK(inv, (Inputs{away_from_zero_leaf({5}, 3)}));
}

TEST(Gradcheck, Maximum) {
  auto f = [](const Inputs& x) { return maximum(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1}, 3), randn_leaf({4}, 4)}));
}

TEST(Gradcheck, Minimum) {
  auto f = [](const Inputs& x) { return minimum(x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1}, 3), randn_leaf({4}, 4)}));
}

TEST(Gradcheck, AddScalar) {
  auto f = [](const Inputs& x) { return add(x[0], 2.5); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, MulScalar) {
  auto f = [](const Inputs& x) { return mul(x[0], -1.5); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

// ---------------------------------------------------------------------------------------------
// elementwise, unary
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, Neg) {
  auto f = [](const Inputs& x) { return neg(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Exp) {
  auto f = [](const Inputs& x) { return exp(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Log) {
  auto f = [](const Inputs& x) { return log(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.2, 3.0, 1)}));
}

TEST(Gradcheck, Sqrt) {
  auto f = [](const Inputs& x) { return sqrt(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.2, 3.0, 1)}));
}

TEST(Gradcheck, Rsqrt) {
  auto f = [](const Inputs& x) { return rsqrt(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, 0.2, 3.0, 1)}));
}

TEST(Gradcheck, Abs) {
  auto f = [](const Inputs& x) { return abs(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{away_from_zero_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Tanh) {
  auto f = [](const Inputs& x) { return tanh(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Sigmoid) {
  auto f = [](const Inputs& x) { return sigmoid(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Relu) {
  auto f = [](const Inputs& x) { return relu(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{away_from_zero_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, Gelu) {
  auto f = [](const Inputs& x) { return gelu(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 4}, 1)}));
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({6}, -4.0, 4.0, 2)}));
  // Exactly 0 (the rule divides by x there unless it special-cases it) and values near it.
  Tensor x = ops::from_vector(std::vector<double>{0.0, 1e-3, -1e-3, 0.5}, {4});
  x.set_requires_grad();
  EXPECT_GRADCHECK(f, (Inputs{x}));
}

TEST(Gradcheck, GeluTanh) {
  auto f = [](const Inputs& x) { return gelu_tanh(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 4}, 1)}));
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({6}, -4.0, 4.0, 2)}));
}

TEST(Gradcheck, Sin) {
  auto f = [](const Inputs& x) { return sin(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, -3.0, 3.0, 1)}));
}

TEST(Gradcheck, Cos) {
  auto f = [](const Inputs& x) { return cos(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{uniform_leaf({2, 3}, -3.0, 3.0, 1)}));
}

TEST(Gradcheck, Where) {
  Tensor cond = bool_tensor({true, false, true, false, false, true}, {2, 3});
  auto f = [cond](const Inputs& x) { return where(cond, x[0], x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2)}));
  // Broadcasting: a row for b, a [2, 1] column condition.
  Tensor col = bool_tensor({true, false}, {2, 1});
  auto g = [col](const Inputs& x) { return where(col, x[0], x[1]); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3}, 3), randn_leaf({3}, 4)}));
}

TEST(Gradcheck, MaskedFill) {
  Tensor mask = bool_tensor({false, true, false, true, true, false}, {2, 3});
  auto f = [mask](const Inputs& x) { return masked_fill(x[0], mask, -7.0); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
  Tensor row = bool_tensor({true, false, false}, {3});  // broadcast over rows
  auto g = [row](const Inputs& x) { return masked_fill(x[0], row, 0.0); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3}, 2)}));
}

// ---------------------------------------------------------------------------------------------
// reductions
// ---------------------------------------------------------------------------------------------

namespace {
const std::vector<std::vector<int64_t>> kAxisSets = {{}, {0}, {1}, {-1}, {0, 2}, {2, 0}, {0, 1, 2}};
}

TEST(Gradcheck, Sum) {
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "axes " << shape_str(axes) << " keepdim " << keepdim);
      auto f = [axes, keepdim](const Inputs& x) { return sum(x[0], axes, keepdim); };
      EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
    }
  }
}

TEST(Gradcheck, Mean) {
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "axes " << shape_str(axes) << " keepdim " << keepdim);
      auto f = [axes, keepdim](const Inputs& x) { return mean(x[0], axes, keepdim); };
      EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
    }
  }
}

TEST(Gradcheck, Max) {
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "axes " << shape_str(axes) << " keepdim " << keepdim);
      auto f = [axes, keepdim](const Inputs& x) { return max(x[0], axes, keepdim); };
      EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
    }
  }
}

TEST(Gradcheck, Min) {
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "axes " << shape_str(axes) << " keepdim " << keepdim);
      auto f = [axes, keepdim](const Inputs& x) { return min(x[0], axes, keepdim); };
      EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
    }
  }
}

TEST(Gradcheck, Var) {
  for (int64_t correction : {0, 1}) {
    for (const auto& axes : kAxisSets) {
      for (bool keepdim : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "correction " << correction << " axes " << shape_str(axes)
                                          << " keepdim " << keepdim);
        auto f = [axes, keepdim, correction](const Inputs& x) { return var(x[0], axes, correction, keepdim); };
        EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
      }
    }
  }
}

TEST(Gradcheck, Logsumexp) {
  for (const auto& axes : kAxisSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "axes " << shape_str(axes) << " keepdim " << keepdim);
      auto f = [axes, keepdim](const Inputs& x) { return logsumexp(x[0], axes, keepdim); };
      EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
    }
  }
}

TEST(Gradcheck, SumTo) {
  for (const Shape& target : {Shape{3, 1}, Shape{4}, Shape{1, 4}, Shape{2, 1, 1}, Shape{}}) {
    SCOPED_TRACE(::testing::Message() << "to " << shape_str(target));
    auto f = [target](const Inputs& x) { return sum_to(x[0], target); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 4}, 1)}));
  }
}

// ---------------------------------------------------------------------------------------------
// views and copies
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, View) {
  auto f = [](const Inputs& x) { return view(x[0], {2, -1, 2}); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  // A non-contiguous input that strides can still express: split the (stride-1) leading axis of x^T.
  auto g = [](const Inputs& x) { return view(transpose(x[0], 0, 1), {2, 2, 3}); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
}

TEST(Gradcheck, Reshape) {
  auto f = [](const Inputs& x) { return reshape(x[0], {4, 3}); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 6}, 1)}));
  // x^T cannot be flattened by strides alone: reshape must copy.
  auto g = [](const Inputs& x) { return reshape(transpose(x[0], 0, 1), {12}); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
  auto h = [](const Inputs& x) { return reshape(permute(x[0], {2, 0, 1}), {4, 6}); };
  EXPECT_GRADCHECK(h, (Inputs{randn_leaf({2, 3, 4}, 3)}));
}

TEST(Gradcheck, Permute) {
  auto f = [](const Inputs& x) { return permute(x[0], {2, 0, 1}); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 4}, 1)}));
  auto g = [](const Inputs& x) { return permute(x[0], {-1, -3, -2}); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 4}, 2)}));
}

TEST(Gradcheck, Transpose) {
  auto f = [](const Inputs& x) { return transpose(x[0], 0, 2); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 4}, 1)}));
  auto g = [](const Inputs& x) { return transpose(x[0], -1, -2); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 4}, 2)}));
}

TEST(Gradcheck, Narrow) {
  auto f = [](const Inputs& x) { return narrow(x[0], 1, 1, 2); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  auto g = [](const Inputs& x) { return narrow(transpose(x[0], 0, 1), 0, 2, 2); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
}

TEST(Gradcheck, Slice) {
  auto f = [](const Inputs& x) { return slice(x[0], 1, 0, 5, 2); };  // columns 0, 2, 4
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 5}, 1)}));
  auto g = [](const Inputs& x) { return slice(x[0], 0, -4, 100, 2); };  // negative start, clamped end
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({5, 2}, 2)}));
}

TEST(Gradcheck, Select) {
  auto f = [](const Inputs& x) { return select(x[0], 1, 2); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 4}, 1)}));
  auto g = [](const Inputs& x) { return select(x[0], -1, -1); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 4}, 2)}));
}

TEST(Gradcheck, Expand) {
  auto f = [](const Inputs& x) { return expand(x[0], {2, 3, 4}); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1}, 1)}));
  auto g = [](const Inputs& x) { return expand(x[0], {3, -1}); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({1, 4}, 2)}));
}

TEST(Gradcheck, Squeeze) {
  auto f = [](const Inputs& x) { return squeeze(x[0], 1); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 1, 4}, 1)}));
  auto g = [](const Inputs& x) { return squeeze(x[0], -1); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 1}, 2)}));
}

TEST(Gradcheck, Unsqueeze) {
  auto f = [](const Inputs& x) { return unsqueeze(x[0], 1); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  auto g = [](const Inputs& x) { return unsqueeze(x[0], -1); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
}

TEST(Gradcheck, Flatten) {
  auto f = [](const Inputs& x) { return flatten(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 2}, 1)}));
  auto g = [](const Inputs& x) { return flatten(x[0], 1, 2); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 2}, 2)}));
  auto h = [](const Inputs& x) { return flatten(transpose(x[0], 0, 2), 0, 1); };  // needs a copy
  EXPECT_GRADCHECK(h, (Inputs{randn_leaf({2, 3, 2}, 3)}));
}

TEST(Gradcheck, Contiguous) {
  auto f = [](const Inputs& x) { return contiguous(transpose(x[0], 0, 1)); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  auto g = [](const Inputs& x) { return contiguous(x[0]); };  // already contiguous: passes through
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
}

TEST(Gradcheck, Clone) {
  auto f = [](const Inputs& x) { return clone(x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  auto g = [](const Inputs& x) { return clone(slice(x[0], 1, 0, 4, 2)); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
}

TEST(Gradcheck, ToDtype) {
  // float64 -> float32 -> float64: the round trip through float32 is identity-with-rounding, so the
  // finite differences need a larger step (rounding error ~6e-8 / eps) and a looser tolerance. The
  // function is linear, so the larger step adds no truncation error.
  GradcheckOptions opts;
  opts.eps = 1e-3;
  opts.atol = 1e-3;
  opts.rtol = 1e-3;
  auto f = [](const Inputs& x) { return to_dtype(mul(to_dtype(x[0], DType::Float32), 3.0), F64); };
  EXPECT_GRADCHECK_OPTS(f, (Inputs{randn_leaf({2, 3}, 1)}), opts);
}

TEST(Gradcheck, ToDevice) {
  // On the CPU, to_device(x, cpu) is x itself (no node); the cross-device backward rule (a copy back to
  // the source device) needs a second device and is exercised by the CUDA tests.
  auto f = [](const Inputs& x) { return to_device(mul(x[0], 2.0), Device::cpu()); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1)}));
}

// ---------------------------------------------------------------------------------------------
// linear algebra and rows
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, Matmul) {
  auto f = [](const Inputs& x) { return matmul(x[0], x[1]); };
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{2, 3}, {3, 4}},        // 2-D
      {{2, 2, 3}, {2, 3, 2}},  // batched
      {{2, 1, 2, 3}, {3, 3, 2}},  // broadcast batch: [2, 1] with [3] -> [2, 3]
      {{2, 3}, {2, 3, 2}},     // a broadcast over b's batch
      {{3}, {3, 2}},           // 1-D @ 2-D
      {{2, 3}, {3}},           // 2-D @ 1-D
      {{4}, {4}},              // 1-D @ 1-D (dot product, shape [])
      {{3}, {2, 3, 2}},        // 1-D @ batched
      {{2, 2, 3}, {3}},        // batched @ 1-D
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << shape_str(c.a) << " @ " << shape_str(c.b));
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf(c.a, seed), randn_leaf(c.b, seed + 1)}));
    seed += 2;
  }
  // Transposed views as operands.
  auto t = [](const Inputs& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); };
  EXPECT_GRADCHECK(t, (Inputs{randn_leaf({3, 2}, 100), randn_leaf({4, 3}, 101)}));
}

TEST(Gradcheck, Softmax) {
  for (int64_t axis : {0, 1, -1}) {
    SCOPED_TRACE(::testing::Message() << "axis " << axis);
    auto f = [axis](const Inputs& x) { return softmax(x[0], axis); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  }
  auto g = [](const Inputs& x) { return softmax(x[0], 1); };  // middle axis of a 3-D tensor
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 2}, 2)}));
}

TEST(Gradcheck, LogSoftmax) {
  for (int64_t axis : {0, 1, -1}) {
    SCOPED_TRACE(::testing::Message() << "axis " << axis);
    auto f = [axis](const Inputs& x) { return log_softmax(x[0], axis); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  }
  auto g = [](const Inputs& x) { return log_softmax(x[0], 1); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 2}, 2)}));
}

TEST(Gradcheck, LayerNorm) {
  {
    SCOPED_TRACE("x, weight and bias");
    auto f = [](const Inputs& x) { return layer_norm(x[0], x[1], x[2]); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3, 4}, 1), randn_leaf({4}, 2), randn_leaf({4}, 3)}));
  }
  {
    SCOPED_TRACE("no weight, no bias");
    auto f = [](const Inputs& x) { return layer_norm(x[0], Tensor(), Tensor()); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 5}, 4)}));
  }
  {
    SCOPED_TRACE("weight only");
    auto f = [](const Inputs& x) { return layer_norm(x[0], x[1], Tensor()); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 5), randn_leaf({4}, 6)}));
  }
  {
    SCOPED_TRACE("weight and bias that do not require grad");
    Generator gen(7);
    Tensor w = ops::randn({4}, F64, &gen), b = ops::randn({4}, F64, &gen);
    auto f = [w, b](const Inputs& x) { return layer_norm(x[0], w, b); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 8)}));
  }
  {
    SCOPED_TRACE("non-contiguous x");
    auto f = [](const Inputs& x) { return layer_norm(transpose(x[0], 0, 1), x[1], x[2]); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 9), randn_leaf({3}, 10), randn_leaf({3}, 11)}));
  }
}

// ---------------------------------------------------------------------------------------------
// joining, splitting, indexing
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, Concat) {
  auto f = [](const Inputs& x) { return concat({x[0], x[1], x[2]}, 1); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 1}, 1), randn_leaf({2, 3}, 2), randn_leaf({2, 2}, 3)}));
  auto g = [](const Inputs& x) { return concat({x[0], x[1]}, -3); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({1, 2, 2}, 4), randn_leaf({2, 2, 2}, 5)}));
}

TEST(Gradcheck, Stack) {
  for (int64_t axis : {0, 1, 2, -1}) {
    SCOPED_TRACE(::testing::Message() << "axis " << axis);
    auto f = [axis](const Inputs& x) { return stack({x[0], x[1], x[2]}, axis); };
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({2, 3}, 2), randn_leaf({2, 3}, 3)}));
  }
}

TEST(Gradcheck, Split) {
  // Each piece alone, then all pieces rejoined out of order (a mixed-up offset would show).
  for (int64_t piece = 0; piece < 3; ++piece) {
    SCOPED_TRACE(::testing::Message() << "piece " << piece);
    auto f = [piece](const Inputs& x) { return split(x[0], 2, 1)[piece]; };  // sizes 2, 2, 1
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 5}, 1)}));
  }
  auto g = [](const Inputs& x) {
    std::vector<Tensor> p = split(x[0], std::vector<int64_t>{1, 3, 2}, 0);
    return concat({p[2], p[0], p[1]}, 0);
  };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({6, 2}, 2)}));
}

TEST(Gradcheck, Chunk) {
  for (int64_t piece = 0; piece < 3; ++piece) {
    SCOPED_TRACE(::testing::Message() << "piece " << piece);
    auto f = [piece](const Inputs& x) { return chunk(x[0], 3, -1)[piece]; };  // sizes 3, 3, 1
    EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 7}, 1)}));
  }
  auto g = [](const Inputs& x) {
    std::vector<Tensor> p = chunk(x[0], 2, 0);
    return concat({p[1], p[0]}, 0);
  };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({4, 3}, 2)}));
}

TEST(Gradcheck, IndexSelect) {
  Tensor rows = index_tensor({2, 0, 2, 1, 2}, {5});  // repeated indices must add up
  auto f = [rows](const Inputs& x) { return index_select(x[0], 0, rows); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  Tensor cols = index_tensor({3, 3, 0}, {3});
  auto g = [cols](const Inputs& x) { return index_select(x[0], -1, cols); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({2, 3, 4}, 2)}));
  Tensor mid = index_tensor({1, 1}, {2});
  auto h = [mid](const Inputs& x) { return index_select(x[0], 1, mid); };
  EXPECT_GRADCHECK(h, (Inputs{randn_leaf({2, 3, 2}, 3)}));
}

TEST(Gradcheck, Gather) {
  Tensor idx1 = index_tensor({0, 3, 3, 1, 2, 2, 0, 0, 1}, {3, 3});  // axis 1, repeats in a row
  auto f = [idx1](const Inputs& x) { return gather(x[0], 1, idx1); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1)}));
  Tensor idx0 = index_tensor({2, 0, 1, 2, 2, 2, 0, 1}, {2, 4});  // axis 0
  auto g = [idx0](const Inputs& x) { return gather(x[0], 0, idx0); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 2)}));
  Tensor small = index_tensor({1, 0, 1, 1}, {2, 2});  // index smaller than x in the other axis
  auto h = [small](const Inputs& x) { return gather(x[0], 1, small); };
  EXPECT_GRADCHECK(h, (Inputs{randn_leaf({3, 4}, 3)}));
  // A transposed (non-contiguous) gradient reaches gather's backward, and the index itself is a view.
  Tensor idx_t = ops::transpose(idx1, 0, 1);
  auto t = [idx_t](const Inputs& x) { return transpose(gather(transpose(x[0], 0, 1), 0, idx_t), 0, 1); };
  EXPECT_GRADCHECK(t, (Inputs{randn_leaf({3, 4}, 4)}));
}

TEST(Gradcheck, ScatterAdd) {
  Tensor idx = index_tensor({2, 0, 2, 1, 0, 0, 2, 1}, {2, 4});  // axis 0, collisions in column 0 and 2
  auto f = [idx](const Inputs& x) { return scatter_add(x[0], 0, idx, x[1]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({3, 4}, 1), randn_leaf({2, 4}, 2)}));
  Tensor idx1 = index_tensor({0, 0, 3, 1, 2, 1}, {3, 2});  // axis 1
  auto g = [idx1](const Inputs& x) { return scatter_add(x[0], 1, idx1, x[1]); };
  EXPECT_GRADCHECK(g, (Inputs{randn_leaf({3, 4}, 3), randn_leaf({3, 2}, 4)}));
  // Non-contiguous x and src, and a non-contiguous gradient arriving from a transpose.
  auto v = [idx1](const Inputs& x) {
    return transpose(scatter_add(transpose(x[0], 0, 1), 1, idx1, transpose(x[1], 0, 1)), 0, 1);
  };
  EXPECT_GRADCHECK(v, (Inputs{randn_leaf({4, 3}, 7), randn_leaf({2, 3}, 8)}));
  // Only src requires grad.
  Generator gen(5);
  Tensor base = ops::randn({3, 4}, F64, &gen);
  auto h = [idx, base](const Inputs& x) { return scatter_add(base, 0, idx, x[0]); };
  EXPECT_GRADCHECK(h, (Inputs{randn_leaf({2, 4}, 6)}));
}

// ---------------------------------------------------------------------------------------------
// operators
// ---------------------------------------------------------------------------------------------

TEST(Gradcheck, OperatorsTensorTensor) {
  auto f = [](const Inputs& x) { return (x[0] + x[1]) * x[0] - x[1] / x[2] + (-x[0]); };
  EXPECT_GRADCHECK(f, (Inputs{randn_leaf({2, 3}, 1), randn_leaf({3}, 2), away_from_zero_leaf({2, 1}, 3)}));
}

TEST(Gradcheck, OperatorPlusScalar) {
  auto right = [](const Inputs& x) { return x[0] + 1.5; };
  auto left = [](const Inputs& x) { return 1.5 + x[0]; };
  EXPECT_GRADCHECK(right, (Inputs{randn_leaf({2, 3}, 1)}));
  EXPECT_GRADCHECK(left, (Inputs{randn_leaf({2, 3}, 2)}));
}

TEST(Gradcheck, OperatorMinusScalar) {
  auto right = [](const Inputs& x) { return x[0] - 1.5; };
  auto left = [](const Inputs& x) { return 1.5 - x[0]; };
  EXPECT_GRADCHECK(right, (Inputs{randn_leaf({2, 3}, 1)}));
  EXPECT_GRADCHECK(left, (Inputs{randn_leaf({2, 3}, 2)}));
}

TEST(Gradcheck, OperatorTimesScalar) {
  auto right = [](const Inputs& x) { return x[0] * -2.5; };
  auto left = [](const Inputs& x) { return -2.5 * x[0]; };
  EXPECT_GRADCHECK(right, (Inputs{randn_leaf({2, 3}, 1)}));
  EXPECT_GRADCHECK(left, (Inputs{randn_leaf({2, 3}, 2)}));
}

TEST(Gradcheck, OperatorDivideScalar) {
  auto right = [](const Inputs& x) { return x[0] / 4.0; };
  auto left = [](const Inputs& x) { return 3.0 / x[0]; };
  EXPECT_GRADCHECK(right, (Inputs{randn_leaf({2, 3}, 1)}));
  EXPECT_GRADCHECK(left, (Inputs{away_from_zero_leaf({2, 3}, 2)}));
}

// ---------------------------------------------------------------------------------------------
// gradcheck itself
// ---------------------------------------------------------------------------------------------

namespace {
// y = 2x with a deliberately wrong backward (3g instead of 2g).
Tensor wrong_double(const Tensor& x) {
  Tensor out = ops::binary(BinaryOp::Mul, x, 2.0);
  autograd::record("wrong_double", {x}, out, [](const Tensor& g) -> std::vector<Tensor> {
    return {ops::binary(BinaryOp::Mul, g, 3.0)};
  });
  return out;
}

// y = x * x with a backward that swaps elements (a missing-transpose kind of bug); it would pass if the
// output weights were all ones.
Tensor wrong_order_square(const Tensor& x) {
  Tensor out = ops::binary(BinaryOp::Mul, x, x);
  autograd::record("wrong_order_square", {x}, out, [x](const Tensor& g) -> std::vector<Tensor> {
    Tensor d = ops::binary(BinaryOp::Mul, ops::binary(BinaryOp::Mul, g, x), 2.0);
    Tensor reversed = ops::arange(static_cast<double>(d.size(0) - 1), -1.0, -1.0);  // n-1, ..., 0
    return {ops::index_select(d, 0, reversed)};
  });
  return out;
}
}  // namespace

TEST(Gradcheck, DetectsAWrongBackward) {
  auto f = [](const Inputs& x) { return wrong_double(x[0]); };
  GradcheckResult r = autograd::gradcheck(f, Inputs{randn_leaf({2, 3}, 1)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("input 0"), std::string::npos) << r.message;
  EXPECT_GT(r.max_abs_error, 1e-3);

  // The same function with a correct rule passes (so the failure above is the rule's, not the harness's).
  auto right = [](const Inputs& x) { return mul(x[0], 2.0); };
  EXPECT_GRADCHECK(right, (Inputs{randn_leaf({2, 3}, 1)}));
}

TEST(Gradcheck, DetectsMixedUpElements) {
  auto f = [](const Inputs& x) { return wrong_order_square(x[0]); };
  GradcheckResult r = autograd::gradcheck(f, Inputs{randn_leaf({5}, 2)});
  EXPECT_FALSE(r.ok) << "a gradient with its elements reversed went unnoticed";
}

TEST(Gradcheck, ReportsAnOutputThatIgnoresTheInputs) {
  Generator gen(3);
  Tensor c = ops::randn({3}, F64, &gen);
  auto f = [c](const Inputs&) { return mul(c, 2.0); };
  GradcheckResult r = autograd::gradcheck(f, Inputs{randn_leaf({3}, 4)});
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.message.empty());
}

TEST(Gradcheck, RejectsNonFloat64Inputs) {
  Tensor x = ops::zeros({3});  // float32
  x.set_requires_grad();
  auto f = [](const Inputs& xs) { return mul(xs[0], 2.0); };
  EXPECT_THROW(autograd::gradcheck(f, Inputs{x}), std::invalid_argument);
}
