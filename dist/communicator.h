// The ranks of a data-parallel run and what they say to each other, on the CPU. One implementation is
// Open MPI's (mpi_communicator.cpp, built with GLANCE_MPI); a run of one process has none and needs none.
//
// Every wait is bounded: a rank that died or hangs makes the others throw RankTimeout within the timeout,
// naming it where it can be known (arrive), instead of blocking for ever inside a collective.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace glance::dist {

// A collective or a peer that did not answer in time; the message names the ranks where known.
class RankTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A sum over the ranks that was started and not yet waited for.
class PendingSum {
 public:
  virtual ~PendingSum() = default;
  // Blocks (bounded by the timeout; `what` names it in the error) until the sum is in the buffer.
  virtual void wait(const std::string& what) = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // the rank among those on this machine (picks the GPU)
  virtual double timeout_s() const = 0;

  // Every rank's `mine` side by side, rank 0's first: [size * mine.size()] (the same length on every rank).
  virtual std::vector<double> allgather(const std::vector<double>& mine, const std::string& what) = 0;
  // `bytes` of rank `root` into every rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root, const std::string& what) = 0;
  // Starts data[0..n) = the sum over the ranks of their data[0..n), added in rank order ((r0 + r1) + r2 ...),
  // so the result is the same bits on every rank and from run to run. `data` must stay alive and unchanged
  // until wait(). (MPI_Allreduce fixes no order: gathering every rank's block, then adding here, does.)
  virtual std::unique_ptr<PendingSum> start_ordered_sum(float* data, int64_t n) = 0;
  // Tells the others this rank reached `step` and waits until every rank has; throws RankTimeout naming the
  // ranks that did not within the timeout (dead, stopped or far behind).
  virtual void arrive(int64_t step) = 0;
  // Prints `message` and ends every rank of the run (exit status 1 from the launcher). Does not return.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
};

}  // namespace glance::dist
