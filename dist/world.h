// Joining a data-parallel run: was this process started by mpirun or srun, and if so, its communicator.
//
//   mpirun -np 4 glance train ...     (Open MPI: OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK)
//   srun -n 4 glance train ...        (Slurm with PMIx: PMIX_RANK; SLURM_NTASKS)
//
// Without a launcher glance never calls MPI: a plain `glance train` runs exactly as a build without MPI.
#pragma once
#include <memory>
#include <string>

#include "dist/bucket_transport.h"
#include "dist/communicator.h"
#include "tensor/device.h"

namespace glance::dist {

struct Launch {
  bool launched = false;  // started by an MPI launcher (mpirun, srun), even as one rank
  int rank = 0, size = 1;
  std::string launcher;   // "mpirun", "srun", "" when not launched
};
// From the launcher's environment variables (read before MPI is started).
Launch launch_from_environment();

bool built_with_mpi();   // GLANCE_MPI found Open MPI (or another MPI) at build time
bool built_with_nccl();  // and NCCL with CUDA: gradients all-reduced on the GPUs

// Starts MPI and returns the communicator of all the ranks. Throws when glance was built without MPI,
// naming the launch and the build option.
std::unique_ptr<Communicator> join_world(const Launch& launch, double timeout_s);

// How gradients on `device` are summed over the ranks: MPI for CPU tensors, NCCL for GPU tensors (throws
// naming the build option when glance was built without NCCL).
std::unique_ptr<BucketTransport> make_bucket_transport(Communicator& world, Device device);

}  // namespace glance::dist
