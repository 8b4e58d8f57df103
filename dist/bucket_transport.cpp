#include "dist/bucket_transport.h"

#include <stdexcept>

namespace glance::dist {

void CpuBucketTransport::start(size_t bucket, const Tensor& flat) {
  if (!flat.device().is_cpu() || flat.dtype() != DType::Float32 || !flat.is_contiguous()) {
    throw std::invalid_argument("CpuBucketTransport: a bucket must be a contiguous float32 CPU tensor");
  }
  pending_[bucket] = world_.start_ordered_sum(flat.data<float>(), flat.numel());
}

void CpuBucketTransport::wait(size_t bucket) {
  auto it = pending_.find(bucket);
  if (it == pending_.end()) throw std::logic_error("CpuBucketTransport: bucket " + std::to_string(bucket) + " was not started");
  it->second->wait("the gradient all-reduce (bucket " + std::to_string(bucket) + ")");
  pending_.erase(it);
}

}  // namespace glance::dist
