// Gradient buckets: the parameters grouped so that the all-reduce of a group can start while the backward
// pass is still computing the gradients of the others (PyTorch DDP's design, Li et al., VLDB 2020).
//
//   parameters (forward order):   embed  block0.*  block1.*  ...  head
//   backward produces them in about the reverse order, so the buckets are filled from the end:
//   bucket 0 = [head, blockL.* ...] up to `cap_bytes`, bucket 1 = the next ones, ...
//
// A bucket is ready when the last of its parameters' gradients is final (autograd::GradReadyHook); it is then
// started at once. A parameter larger than the cap gets a bucket of its own. The plan depends only on the
// parameters' sizes, so every rank makes the same buckets in the same order (the collectives must match).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace glance::dist {

struct BucketPlan {
  std::vector<std::vector<size_t>> buckets;  // parameter indices of each bucket, in the order they are filled
  std::vector<size_t> bucket_of;             // [parameters] the bucket of each parameter
  std::vector<int64_t> elements;             // [buckets] the elements of each bucket
};

// `numels`: the parameters' element counts in forward (registration) order; 4-byte elements.
BucketPlan plan_buckets(const std::vector<int64_t>& numels, int64_t cap_bytes);

// Which buckets are complete, as gradients become final one by one; reset before each backward pass.
class BucketReadiness {
 public:
  explicit BucketReadiness(const BucketPlan& plan);
  void reset();
  // Marks parameter `p` final; returns true when that completed its bucket (bucket_of[p]). A parameter
  // marked twice in one pass counts once.
  bool mark(size_t p);

 private:
  const BucketPlan& plan_;
  std::vector<size_t> missing_;  // [buckets] parameters not yet final
  std::vector<bool> marked_;     // [parameters]
};

}  // namespace glance::dist
