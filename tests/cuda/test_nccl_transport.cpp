// The NCCL transport of data-parallel training (dist/nccl_transport.h) on one GPU, as one rank: a one-rank
// NCCL communicator whose all-reduce must hand each bucket back unchanged, through the reducer that flattens the
// gradients, and with the same events and streams as on 8 GPUs. Skipped without a GPU, or in a build without
// NCCL. (Several ranks: `mpirun -np N glance train --device cuda`, docs/13.)
#include <gtest/gtest.h>

#include <vector>

#include "autograd/functions.h"
#include "cuda_testing.h"
#include "dist/gradient_reducer.h"
#include "dist/world.h"

namespace {

using namespace glance;
using namespace glance::cuda_testing;

// The world of one process: rank 0 of 1, no one to talk to (the NCCL id "broadcast" keeps rank 0's own id).
class OneRank : public dist::Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  double timeout_s() const override { return 30; }
  std::vector<double> allgather(const std::vector<double>& mine, const std::string&) override { return mine; }
  void broadcast(void*, size_t, int, const std::string&) override {}
  std::unique_ptr<dist::PendingSum> start_ordered_sum(float*, int64_t) override { return nullptr; }
  void arrive(int64_t) override {}
  [[noreturn]] void abort(const std::string& message) override { throw std::runtime_error(message); }
};

TEST(NcclTransport, OneRankHandsTheGradientsBackUnchanged) {
  GLANCE_REQUIRE_CUDA();
  if (!dist::built_with_nccl()) GTEST_SKIP() << "built without NCCL";
  OneRank world;
  std::unique_ptr<dist::BucketTransport> transport = dist::make_bucket_transport(world, gpu());
  // Two parameters in two buckets (8-byte cap): d/dw0 sum(w0 * w1) = w1, d/dw1 = w0.
  std::vector<Tensor> w{to_gpu(ops::from_vector(std::vector<float>{1, 2})).set_requires_grad(),
                        to_gpu(ops::from_vector(std::vector<float>{3, 4})).set_requires_grad()};
  dist::GradientReducer reducer(w, *transport, 8);
  ASSERT_EQ(reducer.plan().buckets.size(), 2u);
  {
    autograd::GradReadyHook hook(reducer.hook());
    sum(mul(w[0], w[1])).backward();
  }
  reducer.finish();
  EXPECT_EQ(to_cpu(w[0].grad()).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(to_cpu(w[1].grad()).to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(reducer.buckets_started_in_backward(), 2);
}

}  // namespace
