// The Communicator on MPI (built with GLANCE_MPI), on a duplicate of MPI_COMM_WORLD: every exchange is
// non-blocking point-to-point messages (MPI_Isend / MPI_Irecv to and from each other rank), waited for by polling
// with a deadline, so no wait outlasts the timeout and a wait that times out names the ranks it still waits for.
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace glance::dist {

// MPI_Init_thread (MPI_THREAD_FUNNELED: only the training thread calls MPI); MPI_Finalize when destroyed.
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s);

}  // namespace glance::dist
