// DataLoader: decides the order of examples (seeded shuffling), groups them into batches, and builds
// the batches on a background thread so the next one is ready when training asks for it.
//
//   DataLoader<LabeledBatch> loader(dataset.size(), {.batch_size = 32, .shuffle = true, .seed = 0},
//                                   [&](const std::vector<int64_t>& idx) { return stack_examples(dataset, idx); });
//   loader.start_epoch(epoch);
//   while (auto batch = loader.next()) { ... batch->inputs ... }
//
// The order depends only on (seed, epoch): the same seed gives the same batches, whatever the timing of
// the background thread. The collate function receives a batch's indices and builds the batch; it runs
// on the background thread, so it must not touch state the training loop changes.
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tensor/random.h"

namespace glance::nn {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  uint64_t seed = 0;
  int64_t prefetch = 2;    // batches built ahead of time (0: build in next(), no thread)
};

// The example order of one epoch: a permutation seeded by (seed, epoch), or 0..n-1 without shuffling.
std::vector<int64_t> epoch_order(int64_t size, bool shuffle, uint64_t seed, int64_t epoch);

template <typename Batch>
class DataLoader {
 public:
  using Collate = std::function<Batch(const std::vector<int64_t>& indices)>;

  DataLoader(int64_t dataset_size, LoaderOptions options, Collate collate)
      : size_(dataset_size), options_(options), collate_(std::move(collate)) {
    if (options_.batch_size <= 0) throw std::invalid_argument("DataLoader: batch_size must be positive");
    if (size_ < 0) throw std::invalid_argument("DataLoader: negative dataset size");
  }
  ~DataLoader() { stop(); }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const {
    return options_.drop_last ? size_ / options_.batch_size : (size_ + options_.batch_size - 1) / options_.batch_size;
  }

  // Fixes this epoch's order and starts building its batches.
  void start_epoch(int64_t epoch) {
    stop();
    std::vector<int64_t> order = epoch_order(size_, options_.shuffle, options_.seed, epoch);
    batches_.clear();
    for (int64_t b = 0; b < batches_per_epoch(); ++b) {
      int64_t begin = b * options_.batch_size, end = std::min(begin + options_.batch_size, size_);
      batches_.emplace_back(order.begin() + begin, order.begin() + end);
    }
    next_to_hand_out_ = 0;
    if (options_.prefetch > 0) {
      stopping_ = false;
      worker_ = std::thread([this] { produce(); });
    }
  }

  // The next batch of the epoch, or nothing at its end. Rethrows an error raised by collate.
  std::optional<Batch> next() {
    if (next_to_hand_out_ >= batches_.size()) return std::nullopt;
    if (options_.prefetch == 0) {
      Batch batch = collate_(batches_[next_to_hand_out_]);  // a throw leaves the position unchanged
      ++next_to_hand_out_;
      return batch;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return !queue_.empty() || error_; });
    if (queue_.empty()) std::rethrow_exception(error_);  // batches built before the failure come first
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    ++next_to_hand_out_;
    space_.notify_one();
    return batch;
  }

 private:
  void produce() {
    for (size_t b = 0; b < batches_.size(); ++b) {
      std::optional<Batch> batch;
      try {
        batch = collate_(batches_[b]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        ready_.notify_one();
        return;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      space_.wait(lock, [this] { return stopping_ || static_cast<int64_t>(queue_.size()) < options_.prefetch; });
      if (stopping_) return;
      queue_.push_back(std::move(*batch));
      ready_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      space_.notify_all();
    }
    if (worker_.joinable()) worker_.join();
    queue_.clear();
    error_ = nullptr;
  }

  int64_t size_;
  LoaderOptions options_;
  Collate collate_;
  std::vector<std::vector<int64_t>> batches_;
  size_t next_to_hand_out_ = 0;

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<Batch> queue_;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace glance::nn
