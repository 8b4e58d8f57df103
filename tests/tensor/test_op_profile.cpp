// op_profile (tensor/op_profile.h): the CPU backend's calls counted by kind, only between start() and stop(),
// only the outermost call (an attention kernel's own products count as attention), only on the profiled thread.
#include <gtest/gtest.h>

#include <thread>

#include "tensor/backend.h"
#include "tensor/op_profile.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace glance;

namespace {

int64_t calls(const op_profile::Totals& t, OpKind k) { return t.calls[static_cast<int>(k)]; }

TEST(OpProfile, CountsEachKindOnceBetweenStartAndStop) {
  const Tensor a = ops::ones({64, 32}), b = ops::ones({32, 16});
  ops::matmul(a, b);  // before start: not counted
  op_profile::start();
  const Tensor c = ops::matmul(a, b);                                   // one gemm (and the allocation of c)
  const Tensor s = ops::softmax(c, -1);                                 // one softmax
  const Tensor g = ops::unary(UnaryOp::GeluErf, c);                     // one GELU
  const Tensor e = ops::binary(BinaryOp::Add, c, 1.0);                  // one other elementwise op
  const op_profile::Totals t = op_profile::stop();
  ops::matmul(a, b);  // after stop: not counted
  EXPECT_EQ(calls(t, OpKind::Gemm), 1);
  EXPECT_EQ(calls(t, OpKind::Softmax), 1);
  EXPECT_EQ(calls(t, OpKind::Gelu), 1);
  EXPECT_EQ(calls(t, OpKind::Elementwise), 1);
  EXPECT_EQ(calls(t, OpKind::Attention), 0);
  EXPECT_GE(calls(t, OpKind::Memory), 4);  // c, s, g, e at least
  EXPECT_GT(t.seconds[static_cast<int>(OpKind::Gemm)], 0.0);
  EXPECT_FALSE(op_profile::active());
}

TEST(OpProfile, AKernelsInnerCallsCountAsTheKernel) {
  Generator gen(1);
  const Tensor q = ops::randn({2, 40, 8}, DType::Float32, &gen), k = ops::randn({2, 40, 8}, DType::Float32, &gen);
  const Tensor v = ops::randn({2, 40, 8}, DType::Float32, &gen);
  AttentionClips clips;
  clips.offsets = {0, 40};
  op_profile::start();
  // The CPU's short-clip kernel computes its products with ops::matmul and its softmax with ops::softmax.
  backend_for(Device::cpu()).attention_forward(q, k, v, clips, AttentionOptions{0.35});
  const op_profile::Totals t = op_profile::stop();
  EXPECT_EQ(calls(t, OpKind::Attention), 1);
  EXPECT_EQ(calls(t, OpKind::Gemm), 0);
  EXPECT_EQ(calls(t, OpKind::Softmax), 0);
}

TEST(OpProfile, OtherThreadsAreNotCounted) {
  op_profile::start();
  std::thread other([] { ops::matmul(ops::ones({8, 8}), ops::ones({8, 8})); });
  other.join();
  const op_profile::Totals t = op_profile::stop();
  EXPECT_EQ(calls(t, OpKind::Gemm), 0);
}

}  // namespace
