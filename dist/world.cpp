#include "dist/world.h"

#include <cstdlib>
#include <stdexcept>

#if GLANCE_WITH_MPI
#include "dist/mpi_communicator.h"
#endif
#if GLANCE_WITH_NCCL
#include "dist/nccl_transport.h"
#endif

namespace glance::dist {

namespace {
// The variable's value as an int, or `fallback` when unset or not a number.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' ? static_cast<int>(n) : fallback;
}
}  // namespace

Launch launch_from_environment() {
  Launch l;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    l.launched = true, l.launcher = "mpirun";
    l.size = env_int("OMPI_COMM_WORLD_SIZE", 1), l.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
  } else if (std::getenv("PMIX_RANK") != nullptr || std::getenv("PMI_RANK") != nullptr) {
    // srun --mpi=pmix (or pmi2), or another PMI launcher: the size comes from Slurm when it is there.
    l.launched = true, l.launcher = std::getenv("SLURM_PROCID") != nullptr ? "srun" : "a PMI launcher";
    l.rank = env_int("PMIX_RANK", env_int("PMI_RANK", 0));
    l.size = env_int("SLURM_NTASKS", env_int("PMI_SIZE", 1));
  }
  return l;
}

bool built_with_mpi() { return GLANCE_WITH_MPI != 0; }
bool built_with_nccl() { return GLANCE_WITH_NCCL != 0; }

std::unique_ptr<Communicator> join_world(const Launch& launch, double timeout_s) {
#if GLANCE_WITH_MPI
  return make_mpi_communicator(timeout_s);
#else
  (void)timeout_s;
  throw std::runtime_error("started by " + launch.launcher + " as rank " + std::to_string(launch.rank) + " of " +
                           std::to_string(launch.size) + ", but this glance was built without MPI (GLANCE_MPI=OFF, or "
                           "no MPI found): each rank would train alone and write the same files. Install Open MPI "
                           "(libopenmpi-dev) and rebuild, or run glance without mpirun");
#endif
}

std::unique_ptr<BucketTransport> make_bucket_transport(Communicator& world, Device device) {
  if (device.is_cpu()) return std::make_unique<CpuBucketTransport>(world);
#if GLANCE_WITH_NCCL
  return make_nccl_transport(world, device.index);
#else
  throw std::invalid_argument("several ranks on " + device.str() + " need NCCL: this glance was built without it "
                              "(it comes with GLANCE_MPI, CUDA and the toolkit's nccl.h and libnccl)");
#endif
}

}  // namespace glance::dist
