#include "dist/mpi_communicator.h"

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

class MpiSum : public PendingSum {
 public:
  MpiSum(MPI_Comm comm, int size, int rank, double timeout_s, float* data, int64_t n)
      : size_(size), rank_(rank), timeout_s_(timeout_s), data_(data), n_(n),
        gathered_(static_cast<size_t>(n) * static_cast<size_t>(size)) {
    requests_.resize(1);
    check(MPI_Iallgather(data, static_cast<int>(n), MPI_FLOAT, gathered_.data(), static_cast<int>(n), MPI_FLOAT, comm,
                         &requests_[0]),
          "MPI_Iallgather");
  }
  void wait(const std::string& what) override {
    if (!wait_all(requests_, timeout_s_, what)) {
      throw RankTimeout("rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                        seconds_text(timeout_s_) + " s (a rank died or hangs; --dist-timeout sets the limit)");
    }
    // ((r0 + r1) + r2) + ...: one order, on every rank.
    const float* g = gathered_.data();
    std::memcpy(data_, g, static_cast<size_t>(n_) * sizeof(float));
    for (int r = 1; r < size_; ++r) {
      const float* part = g + static_cast<size_t>(r) * static_cast<size_t>(n_);
      for (int64_t i = 0; i < n_; ++i) data_[i] += part[i];
    }
  }

 private:
  int size_, rank_;
  double timeout_s_;
  float* data_;
  int64_t n_;
  std::vector<float> gathered_;  // [size, n]
  std::vector<MPI_Request> requests_;
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
    std::vector<MPI_Request> request(1);
    check(MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                         static_cast<int>(mine.size()), MPI_DOUBLE, comm_, &request[0]),
          what);
    if (!wait_all(request, timeout_s_, what)) throw timeout(what);
    return all;
  }

  void broadcast(void* data, size_t bytes, int root, const std::string& what) override {
    std::vector<MPI_Request> request(1);
    check(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &request[0]), what);
    if (!wait_all(request, timeout_s_, what)) throw timeout(what);
  }

  std::unique_ptr<PendingSum> start_ordered_sum(float* data, int64_t n) override {
    return std::make_unique<MpiSum>(comm_, size_, rank_, timeout_s_, data, n);
  }

  void arrive(int64_t step) override {
    // One small message to and from every other rank: when one is missing at the deadline, its sender is the
    // rank to name. (Sends this small go out at once; the receives tell who arrived.)
    // The buffers are members: after a timeout the receives stay posted, and a late rank's message must land in
    // memory that is still there.
    const size_t peers = static_cast<size_t>(size_ - 1);
    std::vector<int64_t>& theirs = arrive_received_;
    std::vector<MPI_Request>& receives = arrive_receives_;
    std::vector<MPI_Request>& sends = arrive_sends_;
    theirs.assign(peers, -1), receives.assign(peers, MPI_REQUEST_NULL), sends.assign(peers, MPI_REQUEST_NULL);
    sent_step_ = step;
    for (int r = 0, k = 0; r < size_; ++r) {
      if (r == rank_) continue;
      check(MPI_Irecv(&theirs[k], 1, MPI_INT64_T, r, kArriveTag, comm_, &receives[k]), "arrive");
      check(MPI_Isend(&sent_step_, 1, MPI_INT64_T, r, kArriveTag, comm_, &sends[k]), "arrive");
      ++k;
    }
    if (!wait_all(receives, timeout_s_, "arrive")) {
      std::string missing;
      for (int r = 0, k = 0; r < size_; ++r) {
        if (r == rank_) continue;
        int done = 0;
        MPI_Test(&receives[k], &done, MPI_STATUS_IGNORE);
        if (!done) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        ++k;
      }
      throw RankTimeout("rank " + std::to_string(rank_) + ": rank " + missing + " did not reach step " +
                        std::to_string(step) + " within " + seconds_text(timeout_s_) +
                        " s of this rank (it died, hangs or is far slower; --dist-timeout sets the limit)");
    }
    for (size_t k = 0; k < peers; ++k) {
      if (theirs[k] != step) {
        throw std::runtime_error("rank " + std::to_string(rank_) + " is at step " + std::to_string(step) +
                                 " but a peer is at step " + std::to_string(theirs[k]) + ": the ranks disagree");
      }
    }
    if (!wait_all(sends, timeout_s_, "arrive")) throw timeout("arrive");
  }

  [[noreturn]] void abort(const std::string& message) override {
    std::cerr << message << std::endl;
    MPI_Abort(comm_, 1);
    std::_Exit(1);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  RankTimeout timeout(const std::string& what) const {
    return RankTimeout("rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                       seconds_text(timeout_s_) + " s (a rank died or hangs; --dist-timeout sets the limit)");
  }

  double timeout_s_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  int64_t sent_step_ = 0;  // the buffer of arrive's sends (alive until they complete)
  std::vector<int64_t> arrive_received_;
  std::vector<MPI_Request> arrive_receives_, arrive_sends_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace glance::dist
