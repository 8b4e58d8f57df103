#include "dist/bucket_plan.h"

#include <stdexcept>

namespace glance::dist {

BucketPlan plan_buckets(const std::vector<int64_t>& numels, int64_t cap_bytes) {
  if (cap_bytes <= 0) throw std::invalid_argument("plan_buckets: the bucket cap must be > 0 bytes");
  BucketPlan plan;
  plan.bucket_of.assign(numels.size(), 0);
  int64_t bytes = 0;
  for (size_t k = numels.size(); k-- > 0;) {  // the last parameter first: its gradient is ready first
    const int64_t b = numels[k] * 4;
    if (plan.buckets.empty() || (bytes > 0 && bytes + b > cap_bytes)) {
      plan.buckets.emplace_back();
      plan.elements.push_back(0);
      bytes = 0;
    }
    plan.buckets.back().push_back(k);
    plan.elements.back() += numels[k];
    plan.bucket_of[k] = plan.buckets.size() - 1;
    bytes += b;
  }
  return plan;
}

BucketReadiness::BucketReadiness(const BucketPlan& plan) : plan_(plan) { reset(); }

void BucketReadiness::reset() {
  missing_.clear();
  for (const auto& bucket : plan_.buckets) missing_.push_back(bucket.size());
  marked_.assign(plan_.bucket_of.size(), false);
}

bool BucketReadiness::mark(size_t p) {
  if (p >= marked_.size() || marked_[p]) return false;
  marked_[p] = true;
  return --missing_[plan_.bucket_of[p]] == 0;
}

}  // namespace glance::dist
