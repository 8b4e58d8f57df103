#include "dist/nccl_transport.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <thread>

namespace glance::dist {

namespace {

void check_cuda(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw std::runtime_error(what + ": " + cudaGetErrorString(e));
}
void check_nccl(ncclResult_t r, const std::string& what) {
  if (r != ncclSuccess) throw std::runtime_error(what + ": " + ncclGetErrorString(r));
}

class NcclTransport : public BucketTransport {
 public:
  NcclTransport(Communicator& world, int device) : world_(world) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    ncclUniqueId id;
    if (world.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    world.broadcast(&id, sizeof(id), 0, "the NCCL id broadcast");
    check_nccl(ncclCommInitRank(&comm_, world.size(), id, world.rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~NcclTransport() override {
    for (auto& [b, e] : events_) cudaEventDestroy(e.ready), cudaEventDestroy(e.done);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  void start(size_t bucket, const Tensor& flat) override {
    if (flat.device().is_cpu() || flat.dtype() != DType::Float32 || !flat.is_contiguous()) {
      throw std::invalid_argument("NcclTransport: a bucket must be a contiguous float32 GPU tensor");
    }
    Events& e = events(bucket);
    // The gradients were written by kernels on the default stream (glance's CUDA backend uses it): the NCCL
    // stream waits for them there, not the host.
    check_cuda(cudaEventRecord(e.ready, cudaStreamLegacy), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream_, e.ready, 0), "cudaStreamWaitEvent");
    float* data = static_cast<float*>(flat.raw_data());
    check_nccl(ncclAllReduce(data, data, static_cast<size_t>(flat.numel()), ncclFloat, ncclSum, comm_, stream_),
               "ncclAllReduce");
    check_cuda(cudaEventRecord(e.done, stream_), "cudaEventRecord");
  }

  void wait(size_t bucket) override {
    Events& e = events(bucket);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(world_.timeout_s());
    for (;;) {
      const cudaError_t q = cudaEventQuery(e.done);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) check_cuda(q, "the NCCL all-reduce");
      ncclResult_t async = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      check_nccl(async, "the NCCL all-reduce (bucket " + std::to_string(bucket) + ")");
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        throw RankTimeout("rank " + std::to_string(world_.rank()) + ": the NCCL all-reduce of bucket " +
                          std::to_string(bucket) + " did not complete within " + std::to_string(world_.timeout_s()) +
                          " s (a rank died or hangs; --dist-timeout sets the limit)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    check_cuda(cudaStreamWaitEvent(cudaStreamLegacy, e.done, 0), "cudaStreamWaitEvent");
  }

  const char* name() const override { return "nccl-allreduce"; }

 private:
  struct Events {
    cudaEvent_t ready = nullptr, done = nullptr;
  };
  Events& events(size_t bucket) {
    auto it = events_.find(bucket);
    if (it != events_.end()) return it->second;
    Events e;
    check_cuda(cudaEventCreateWithFlags(&e.ready, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventCreateWithFlags(&e.done, cudaEventDisableTiming), "cudaEventCreate");
    return events_[bucket] = e;
  }

  Communicator& world_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::map<size_t, Events> events_;
};

}  // namespace

std::unique_ptr<BucketTransport> make_nccl_transport(Communicator& world, int device_index) {
  return std::make_unique<NcclTransport>(world, device_index);
}

}  // namespace glance::dist
