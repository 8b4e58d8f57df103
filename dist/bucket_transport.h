// How one bucket of gradients is summed over the ranks: on the CPU through the Communicator (an MPI
// exchange of every rank's bucket and a sum in rank order), on GPUs through NCCL (nccl_transport.h). The reducer flattens a
// bucket's gradients into one float32 tensor [elements] on their device and hands it here.
#pragma once
#include <cstddef>
#include <map>
#include <memory>

#include "dist/communicator.h"
#include "tensor/tensor.h"

namespace glance::dist {

class BucketTransport {
 public:
  virtual ~BucketTransport() = default;
  // Starts summing `flat` (contiguous float32, this rank's part) over the ranks; `flat` stays alive and
  // unchanged until wait(bucket).
  virtual void start(size_t bucket, const Tensor& flat) = 0;
  // Blocks until `flat` of start(bucket, flat) holds the sum (bounded by the timeout).
  virtual void wait(size_t bucket) = 0;
  virtual const char* name() const = 0;  // for the run's JSON result
};

// CPU tensors, through Communicator::start_ordered_sum: bit-for-bit the same sum on every rank.
class CpuBucketTransport : public BucketTransport {
 public:
  explicit CpuBucketTransport(Communicator& world) : world_(world) {}
  void start(size_t bucket, const Tensor& flat) override;
  void wait(size_t bucket) override;
  const char* name() const override { return "mpi-rank-order-sum"; }

 private:
  Communicator& world_;
  std::map<size_t, std::unique_ptr<PendingSum>> pending_;
};

}  // namespace glance::dist
