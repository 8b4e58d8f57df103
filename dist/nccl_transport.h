// GPU tensors: each bucket all-reduced by NCCL (ncclAllReduce, sum) on a stream of its own, so it overlaps the
// rest of the backward pass. Built with GLANCE_MPI and CUDA when NCCL is found (GLANCE_WITH_NCCL).
//
//   rank 0: ncclGetUniqueId  --MPI broadcast (Communicator::broadcast)-->  every rank: ncclCommInitRank
//   start(bucket): event on the compute stream -> the NCCL stream waits for it -> ncclAllReduce -> event
//   wait(bucket):  the host polls that event (and ncclCommGetAsyncError) up to the timeout, then the compute
//                  stream waits for it; on a timeout the NCCL communicator is aborted and RankTimeout thrown.
//
// NCCL's ring and tree all-reduces give every rank the same bits; the order of the additions is NCCL's, fixed
// for a given number of ranks and topology, but not the rank order of the CPU path.
#pragma once
#include <memory>

#include "dist/bucket_transport.h"

namespace glance::dist {

// The NCCL communicator of all the ranks of `world` on the GPU `device_index` (the process's current device).
std::unique_ptr<BucketTransport> make_nccl_transport(Communicator& world, int device_index);

}  // namespace glance::dist
