// Data-parallel gradients: after each backward pass every rank holds the sum of all ranks' gradients.
//
//   GradientReducer reducer(model.parameters(), transport, 4 << 20);
//   {
//     autograd::GradReadyHook hook(reducer.hook());    // during backward: full buckets start at once
//     loss.backward();
//   }
//   reducer.finish();                                  // the rest start; wait; .grad = the sums
//
// Each rank's loss is its clips' share of the global batch's mean (sum of its clips' losses / global batch),
// so the sum of the ranks' gradients is the gradient of the global batch's mean loss.
//
// Buckets (bucket_plan.h) start in their index order on every rank, whatever order they became ready in:
// the collectives of all ranks must match one for one. After finish() each gradient is a view into its
// bucket's flat tensor.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "autograd/node.h"
#include "dist/bucket_plan.h"
#include "dist/bucket_transport.h"

namespace glance::dist {

class GradientReducer {
 public:
  GradientReducer(std::vector<Tensor> parameters, BucketTransport& transport, int64_t bucket_cap_bytes);

  autograd::GradReadyFn hook();  // install with autograd::GradReadyHook around backward()
  void finish();

  const BucketPlan& plan() const { return plan_; }
  int64_t bytes_per_step() const;              // gradient bytes summed each step (4 per parameter element)
  double communication_seconds() const { return comm_seconds_; }  // in start and wait, all steps so far
  int64_t buckets_started_in_backward() const { return started_in_backward_; }  // all steps so far

 private:
  void on_ready(TensorImpl& leaf);
  void start_ready_buckets();
  void start_bucket(size_t b);

  std::vector<Tensor> params_;
  BucketTransport& transport_;
  BucketPlan plan_;
  BucketReadiness readiness_;
  std::unordered_map<const TensorImpl*, size_t> index_of_;
  std::vector<bool> ready_;     // [buckets] complete in this pass
  std::vector<Tensor> flat_;    // [buckets] the started buckets' gradients, flattened
  size_t next_to_start_ = 0;    // buckets start in index order
  double comm_seconds_ = 0;
  int64_t started_in_backward_ = 0;
  bool in_backward_ = false;
};

}  // namespace glance::dist
