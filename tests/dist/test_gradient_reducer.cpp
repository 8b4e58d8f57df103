// Gradient buckets (dist/bucket_plan.h), the gradient-ready hook of the backward engine (autograd/node.h) and
// the reducer that joins them (dist/gradient_reducer.h), with a stand-in transport in place of MPI or NCCL:
// it records when each bucket starts and "sums" as two identical ranks would (doubling), so the reduced
// gradients are known by hand.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "dist/gradient_reducer.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using dist::BucketPlan;

TEST(BucketPlan, FillsFromTheLastParameterUpToTheCap) {
  // numels 10, 20, 30, 40 (40, 80, 120, 160 bytes), cap 200 bytes: [3] 160, then 120 + 80 = 200 -> [2, 1],
  // then [0].
  const BucketPlan plan = dist::plan_buckets({10, 20, 30, 40}, 200);
  ASSERT_EQ(plan.buckets.size(), 3u);
  EXPECT_EQ(plan.buckets[0], (std::vector<size_t>{3}));
  EXPECT_EQ(plan.buckets[1], (std::vector<size_t>{2, 1}));
  EXPECT_EQ(plan.buckets[2], (std::vector<size_t>{0}));
  EXPECT_EQ(plan.bucket_of, (std::vector<size_t>{2, 1, 1, 0}));
  EXPECT_EQ(plan.elements, (std::vector<int64_t>{40, 50, 10}));
  // A parameter larger than the cap gets a bucket of its own.
  EXPECT_EQ(dist::plan_buckets({100, 1}, 8).buckets.size(), 2u);
  EXPECT_THROW(dist::plan_buckets({1}, 0), std::invalid_argument);
}

TEST(BucketPlan, ABucketIsReadyWhenItsLastParameterIs) {
  const BucketPlan plan = dist::plan_buckets({10, 20, 30, 40}, 200);
  dist::BucketReadiness ready(plan);
  EXPECT_FALSE(ready.mark(1));  // bucket 1 still waits for parameter 2
  EXPECT_FALSE(ready.mark(1));  // counted once
  EXPECT_TRUE(ready.mark(2));
  EXPECT_TRUE(ready.mark(3));
  ready.reset();
  EXPECT_FALSE(ready.mark(2));
}

TEST(GradReadyHook, CallsEachLeafOnceAfterItsLastUse) {
  // y = sum(a * b + a): a feeds two nodes, so it is final only after both ran; b after the mul.
  Tensor a = ops::from_vector(std::vector<float>{1, 2}).set_requires_grad();
  Tensor b = ops::from_vector(std::vector<float>{3, 4}).set_requires_grad();
  std::vector<std::string> calls;
  std::map<std::string, std::vector<float>> grad_seen;
  {
    autograd::GradReadyHook hook([&](TensorImpl& leaf) {
      const std::string name = &leaf == &a.impl() ? "a" : "b";
      calls.push_back(name);
      grad_seen[name] = Tensor(leaf.grad).to_vector<float>();
    });
    sum(add(mul(a, b), a)).backward();
  }
  ASSERT_EQ(calls.size(), 2u);
  // When called, each gradient is already final: da = b + 1, db = a.
  EXPECT_EQ(grad_seen["a"], (std::vector<float>{4, 5}));
  EXPECT_EQ(grad_seen["b"], (std::vector<float>{1, 2}));
  // No hook: nothing is called.
  a.zero_grad();
  sum(a).backward();
  EXPECT_EQ(calls.size(), 2u);
}

// Sums as two ranks holding the same gradients would: doubles the bucket at wait(); records the order.
class DoublingTransport : public dist::BucketTransport {
 public:
  void start(size_t bucket, const Tensor& flat) override {
    events.push_back("start " + std::to_string(bucket));
    flats[bucket] = flat;
  }
  void wait(size_t bucket) override {
    events.push_back("wait " + std::to_string(bucket));
    float* p = flats[bucket].data<float>();
    for (int64_t i = 0; i < flats[bucket].numel(); ++i) p[i] *= 2;
  }
  const char* name() const override { return "doubling"; }
  std::vector<std::string> events;
  std::map<size_t, Tensor> flats;
};

TEST(GradientReducer, BucketsStartDuringBackwardAndGradientsBecomeTheSums) {
  // A chain w0 -> w1 -> w2 (each a [2] vector, one bucket each with an 8-byte cap), and an unused w3.
  std::vector<Tensor> w;
  for (int k = 0; k < 4; ++k) w.push_back(ops::from_vector(std::vector<float>{float(k + 1), float(k + 2)}).set_requires_grad());
  DoublingTransport transport;
  dist::GradientReducer reducer(w, transport, 8);
  ASSERT_EQ(reducer.plan().buckets.size(), 4u);  // bucket 0 = w3 (unused), 1 = w2, 2 = w1, 3 = w0
  EXPECT_EQ(reducer.bytes_per_step(), 32);
  {
    autograd::GradReadyHook hook(reducer.hook());
    // loss = sum(((x * w0) * w1) * w2) with x = 1: d/dw0 = w1 * w2, d/dw1 = w0 * w2, d/dw2 = w0 * w1.
    sum(mul(mul(mul(ops::ones({2}), w[0]), w[1]), w[2])).backward();
    // w3 never gets a gradient, so bucket 0 cannot start, and buckets start in index order: none yet.
    EXPECT_TRUE(transport.events.empty());
  }
  reducer.finish();
  EXPECT_EQ(transport.events, (std::vector<std::string>{"start 0", "start 1", "start 2", "start 3", "wait 0", "wait 1",
                                                        "wait 2", "wait 3"}));
  // Each gradient is twice the one-rank gradient; the unused parameter's is zeros.
  EXPECT_EQ(w[0].grad().to_vector<float>(), (std::vector<float>{2 * 2 * 3, 2 * 3 * 4}));
  EXPECT_EQ(w[1].grad().to_vector<float>(), (std::vector<float>{2 * 1 * 3, 2 * 2 * 4}));
  EXPECT_EQ(w[2].grad().to_vector<float>(), (std::vector<float>{2 * 1 * 2, 2 * 2 * 3}));
  EXPECT_EQ(w[3].grad().to_vector<float>(), (std::vector<float>{0, 0}));

  // Without the unused parameter, the buckets start one by one inside backward as gradients become final.
  std::vector<Tensor> used(w.begin(), w.begin() + 3);
  for (Tensor& t : used) t.zero_grad();
  DoublingTransport t2;
  dist::GradientReducer r2(used, t2, 8);
  std::vector<size_t> started_during_backward;
  {
    autograd::GradReadyHook hook(r2.hook());
    sum(mul(mul(mul(ops::ones({2}), used[0]), used[1]), used[2])).backward();
    started_during_backward.push_back(t2.events.size());
  }
  r2.finish();
  EXPECT_EQ(started_during_backward[0], 3u);
  EXPECT_EQ(r2.buckets_started_in_backward(), 3);
  EXPECT_EQ(used[2].grad().to_vector<float>(), (std::vector<float>{2 * 1 * 2, 2 * 2 * 3}));
}

}  // namespace
