// The MPI Communicator (dist/mpi_communicator.cpp) on 3 ranks, against values worked out by hand; run by ctest as
// `mpirun -np 3 dist_communicator_check` (DataParallel.Communicator). Prints one line per check; exit 0 when all
// pass on this rank.
//   1. broadcast: rank 0's 128 bytes (the size of an NCCL id, which NcclTransport sends this way) on every rank;
//   2. the ordered sum adds in rank order: ranks 0, 1, 2 hold 1e8, -1e8 and 1 (float32); (1e8 - 1e8) + 1 = 1, while
//      the other groupings give 0 ((1e8 + 1) - 1e8 and (-1e8 + 1) + 1e8: 1e8 + 1 rounds to 1e8): every rank must
//      get exactly 1;
//   3. allgather: rank r's {r, 10 r} side by side;
//   4. arrive: rank 2 comes 5 s late to step 2 with a 3 s timeout; ranks 0 and 1 must throw RankTimeout
//      naming rank 2 (and rank 2, when it arrives, finds the others' messages already there). (3 s, not less:
//      the other checks must not time out on a machine busy with other tests.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "dist/mpi_communicator.h"

namespace {
int failures = 0;
void expect(bool ok, int rank, const std::string& what) {
  std::printf("rank %d: %s: %s\n", rank, what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}
}  // namespace

int main() {
  using namespace glance::dist;
  std::unique_ptr<Communicator> world = make_mpi_communicator(3.0);
  const int rank = world->rank();
  if (world->size() != 3) {
    std::printf("run with mpirun -np 3 (got %d ranks)\n", world->size());
    return 1;
  }

  std::vector<unsigned char> id(128, 0);
  if (rank == 0) {
    for (size_t k = 0; k < id.size(); ++k) id[k] = static_cast<unsigned char>(7 * k + 3);
  }
  world->broadcast(id.data(), id.size(), 0, "test broadcast");
  bool same = true;
  for (size_t k = 0; k < id.size(); ++k) same = same && id[k] == static_cast<unsigned char>(7 * k + 3);
  expect(same, rank, "broadcast of 128 bytes from rank 0");

  const float mine[3] = {1e8f, -1e8f, 1.0f};
  std::vector<float> data{mine[rank], float(rank + 1)};
  world->start_ordered_sum(data.data(), 2)->wait("test sum");
  expect(data[0] == 1.0f, rank, "ordered sum (1e8 + -1e8) + 1 = 1 in float32, got " + std::to_string(data[0]));
  expect(data[1] == 6.0f, rank, "ordered sum 1 + 2 + 3 = 6");

  const std::vector<double> all = world->allgather({double(rank), 10.0 * rank}, "test allgather");
  expect(all == std::vector<double>({0, 0, 1, 10, 2, 20}), rank, "allgather");

  world->arrive(1);
  if (rank == 2) std::this_thread::sleep_for(std::chrono::seconds(5));
  std::string error;
  try {
    world->arrive(2);
  } catch (const RankTimeout& e) {
    error = e.what();
  }
  if (rank == 2) {
    expect(error.empty(), rank, "a late rank finds the others arrived");
  } else {
    expect(error.find("rank 2 did not reach step 2") != std::string::npos, rank, "timeout names rank 2: " + error);
  }
  // Rank 2's late messages complete the others' receives before anyone finalizes.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return failures == 0 ? 0 : 1;
}
