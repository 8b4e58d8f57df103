#include "dist/mpi_communicator.h"

// MPI's C API only: the C++ bindings, deprecated since MPI 2.2, would add a library to link for nothing.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

namespace glance::dist {

namespace {

constexpr int kArriveTag = 7001;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

void check(int code, const std::string& what) {
  if (code != MPI_SUCCESS) throw std::runtime_error(what + ": " + mpi_error_text(code));
}

// Polls `requests` until all are complete or `timeout_s` passed. Polling (not MPI_Waitall) is what bounds the
// wait: a peer that died or stopped leaves its request open for ever. The sleep grows from 20 us to 1 ms, so
// a short wait costs little latency and a long one little CPU. Returns false on timeout.
bool wait_all(std::vector<MPI_Request>& requests, double timeout_s, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    int done = 0;
    check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), what);
    if (done) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

std::string seconds_text(double s) {
  std::string t = std::to_string(s);
  t.erase(t.find_last_not_of('0') + 1);
  if (!t.empty() && t.back() == '.') t.pop_back();
  return t;
}

// Tags keep the three kinds of message apart; within a kind, every rank posts in the same order, and MPI
// matches the messages of one sender and tag in the order they were sent.
constexpr int kBucketTag = 7002, kGatherTag = 7003;

// Every rank's block side by side, by point-to-point messages: this rank sends its block to every other rank
// and receives theirs. (An MPI_Iallgather moves the same bytes, but when it does not finish it cannot say who
// is missing; here each open request names its peer.) `all` is [size, count] of `type`; this rank's slot is
// filled from `mine`.
class PeerExchange {
 public:
  PeerExchange(MPI_Comm comm, int rank, int size, const void* mine, void* all, int count, MPI_Datatype type, int tag,
               const std::string& what)
      : rank_(rank) {
    int type_size = 0;
    MPI_Type_size(type, &type_size);
    const size_t block = static_cast<size_t>(count) * static_cast<size_t>(type_size);
    std::memcpy(static_cast<char*>(all) + static_cast<size_t>(rank) * block, mine, block);
    for (int r = 0; r < size; ++r) {
      if (r == rank) continue;
      peers_.push_back(r);
      requests_.emplace_back();
      check(MPI_Irecv(static_cast<char*>(all) + static_cast<size_t>(r) * block, count, type, r, tag, comm,
                      &requests_.back()),
            what);
    }
    for (int r : peers_) {
      requests_.emplace_back();
      check(MPI_Isend(mine, count, type, r, tag, comm, &requests_.back()), what);
    }
  }
  // Waits up to `timeout_s`; then throws RankTimeout naming every peer whose message did not come or whose
  // receive did not take this rank's (a peer that died or stopped does neither).
  void wait(double timeout_s, const std::string& what) {
    if (wait_all(requests_, timeout_s, what)) return;
    std::vector<bool> missing(peers_.size(), false);
    bool any = false;
    for (size_t k = 0; k < requests_.size(); ++k) {
      int done = 0;
      MPI_Test(&requests_[k], &done, MPI_STATUS_IGNORE);
      if (!done) missing[k % peers_.size()] = true, any = true;
    }
    if (!any) return;  // finished while it was being looked at (this rank itself was stopped past the deadline)
    std::string names;
    for (size_t k = 0; k < peers_.size(); ++k) {
      if (missing[k]) names += (names.empty() ? "" : ", ") + std::to_string(peers_[k]);
    }
    throw RankTimeout("rank " + std::to_string(rank_) + ": rank " + names + " did not complete " + what + " within " +
                      seconds_text(timeout_s) + " s (it died, hangs or is far slower; --dist-timeout sets the limit)");
  }

 private:
  int rank_;
  std::vector<int> peers_;
  std::vector<MPI_Request> requests_;  // the receives (one per peer), then the sends (one per peer)
};

class MpiSum : public PendingSum {
 public:
  MpiSum(MPI_Comm comm, int size, int rank, double timeout_s, float* data, int64_t n)
      : size_(size), timeout_s_(timeout_s), data_(data), n_(n),
        gathered_(static_cast<size_t>(n) * static_cast<size_t>(size)),
        exchange_(comm, rank, size, data, gathered_.data(), static_cast<int>(n), MPI_FLOAT, kBucketTag,
                  "the gradient all-reduce") {}
  void wait(const std::string& what) override {
    exchange_.wait(timeout_s_, what);
    // ((r0 + r1) + r2) + ...: one order, on every rank.
    const float* g = gathered_.data();
    std::memcpy(data_, g, static_cast<size_t>(n_) * sizeof(float));
    for (int r = 1; r < size_; ++r) {
      const float* part = g + static_cast<size_t>(r) * static_cast<size_t>(n_);
      for (int64_t i = 0; i < n_; ++i) data_[i] += part[i];
    }
  }

 private:
  int size_;
  double timeout_s_;
  float* data_;
  int64_t n_;
  std::vector<float> gathered_;  // [size, n]
  PeerExchange exchange_;
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);  // errors come back as codes, named in exceptions
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm local;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
  }
  ~MpiCommunicator() override {
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  double timeout_s() const override { return timeout_s_; }

  std::vector<double> allgather(const std::vector<double>& mine, const std::string& what) override {
    std::vector<double> all(mine.size() * static_cast<size_t>(size_));
    PeerExchange(comm_, rank_, size_, mine.data(), all.data(), static_cast<int>(mine.size()), MPI_DOUBLE, kGatherTag, what)
        .wait(timeout_s_, what);
    return all;
  }

  void broadcast(void* data, size_t bytes, int root, const std::string& what) override {
    std::vector<MPI_Request> request(1);
    check(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &request[0]), what);
    if (!wait_all(request, timeout_s_, what)) {
      throw RankTimeout("rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                        seconds_text(timeout_s_) + " s (a rank died or hangs; --dist-timeout sets the limit)");
    }
  }

  std::unique_ptr<PendingSum> start_ordered_sum(float* data, int64_t n) override {
    return std::make_unique<MpiSum>(comm_, size_, rank_, timeout_s_, data, n);
  }

  void arrive(int64_t step) override {
    // One small message to and from every other rank: when one is missing at the deadline, its sender is the
    // rank to name. The buffers are members: after a timeout the receives stay posted, and a late rank's
    // message must land in memory that is still there.
    arrive_mine_ = step;
    arrive_all_.assign(static_cast<size_t>(size_), -1);
    arrive_exchange_ = std::make_unique<PeerExchange>(comm_, rank_, size_, &arrive_mine_, arrive_all_.data(), 1,
                                                      MPI_INT64_T, kArriveTag, "arrive");
    try {
      arrive_exchange_->wait(timeout_s_, "step " + std::to_string(step));
    } catch (const RankTimeout& e) {
      // "rank 0: rank 1 did not complete step 37 ...": said as what it is.
      std::string text = e.what();
      const std::string from = "did not complete step", to = "did not reach step";
      if (const size_t at = text.find(from); at != std::string::npos) text.replace(at, from.size(), to);
      throw RankTimeout(text);
    }
    for (int r = 0; r < size_; ++r) {
      if (arrive_all_[static_cast<size_t>(r)] != step) {
        throw std::runtime_error("rank " + std::to_string(rank_) + " is at step " + std::to_string(step) + " but rank " +
                                 std::to_string(r) + " is at step " + std::to_string(arrive_all_[static_cast<size_t>(r)]) +
                                 ": the ranks disagree");
      }
    }
  }

  [[noreturn]] void abort(const std::string& message) override {
    std::cerr << message << std::endl;
    MPI_Abort(comm_, 1);
    std::_Exit(1);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  double timeout_s_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  int64_t arrive_mine_ = 0;
  std::vector<int64_t> arrive_all_;
  std::unique_ptr<PeerExchange> arrive_exchange_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace glance::dist
