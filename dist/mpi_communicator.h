// The Communicator on MPI (built with GLANCE_MPI): non-blocking collectives on a duplicate of MPI_COMM_WORLD,
// each waited for by polling with a deadline, so no wait can outlast the timeout.
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace glance::dist {

// MPI_Init_thread (MPI_THREAD_FUNNELED: only the training thread calls MPI); MPI_Finalize when destroyed.
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s);

}  // namespace glance::dist
