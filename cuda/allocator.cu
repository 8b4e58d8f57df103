// The caching allocator (allocator.h): size classes, free lists, statistics, and the out-of-memory path.
#include <cstdio>
#include <stdexcept>

#include "cuda/allocator.h"
#include "cuda/check.h"

namespace glance::cuda {

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string to_string(const AllocatorStats& s) {
  return "in use " + format_bytes(uint64_t(s.in_use)) + " (peak " + format_bytes(uint64_t(s.peak_in_use)) +
         "), cached " + format_bytes(uint64_t(s.cached)) + ", " + std::to_string(s.allocations) + " allocations, " +
         std::to_string(s.cache_hits) + " cache hits, " + std::to_string(s.driver_allocs) + " driver allocations, " +
         std::to_string(s.driver_frees) + " driver frees, " + std::to_string(s.oom_retries) + " out-of-memory retries";
}

namespace {
// Larger requests than this are refused before any rounding (which could overflow); no device has 4 EiB.
constexpr size_t kMaxRequest = size_t(1) << 62;

size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }
}  // namespace

CachingAllocator::CachingAllocator(Driver driver) : driver_(std::move(driver)) {}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes == 0) return kSmallAlignment;
  if (nbytes <= kSmallLimit) return round_up(nbytes, kSmallAlignment);
  return round_up(nbytes, kLargeAlignment);
}

void* CachingAllocator::allocate(size_t nbytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  if (nbytes > kMaxRequest) throw_out_of_memory(nbytes, nbytes);
  const size_t rounded = round_size(nbytes);
  void* ptr = nullptr;
  auto it = free_.find(rounded);
  if (it != free_.end() && !it->second.empty()) {  // a cached block of exactly this class
    ptr = it->second.back();
    it->second.pop_back();
    stats_.cached -= int64_t(rounded);
    ++stats_.cache_hits;
  } else {
    ptr = allocate_from_driver(nbytes, rounded);
  }
  live_.emplace(ptr, rounded);
  stats_.in_use += int64_t(rounded);
  if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  return ptr;
}

void* CachingAllocator::allocate_from_driver(size_t nbytes, size_t rounded) {
  void* ptr = driver_.allocate(rounded);
  if (ptr == nullptr) {
    // Out of memory: the cache may hold enough free blocks of other sizes. Give them all back, try once more.
    ++stats_.oom_retries;
    empty_cache_locked();
    ptr = driver_.allocate(rounded);
    if (ptr == nullptr) throw_out_of_memory(nbytes, rounded);
  }
  ++stats_.driver_allocs;
  return ptr;
}

void CachingAllocator::throw_out_of_memory(size_t nbytes, size_t rounded) {
  std::string msg = driver_.name + ": out of memory: tried to allocate " + format_bytes(nbytes) + " (" +
                    std::to_string(nbytes) + " bytes";
  if (rounded != nbytes) msg += ", size class " + std::to_string(rounded);
  msg += "); caching allocator: " + to_string(stats_);
  if (driver_.describe) msg += "; " + driver_.describe();
  throw std::runtime_error(msg);
}

void CachingAllocator::deallocate(void* ptr) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    // A pointer this allocator never handed out, or one freed twice: a bug in the caller.
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", ptr);
    throw std::invalid_argument(driver_.name + " allocator: deallocate(" + buf +
                                "): not a live block of this allocator (freed twice?)");
  }
  const size_t rounded = it->second;
  live_.erase(it);
  free_[rounded].push_back(ptr);
  stats_.in_use -= int64_t(rounded);
  stats_.cached += int64_t(rounded);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  for (auto& [rounded, blocks] : free_) {
    for (void* p : blocks) {
      driver_.free(p);
      ++stats_.driver_frees;
      stats_.cached -= int64_t(rounded);
    }
  }
  free_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
}

// ---- the device instance ----

CachingAllocator& device_allocator() {
  // Never destroyed, like the backend itself (cuda_backend.cu): tensors held in static objects may be freed
  // during program exit, after function-local statics are gone, and must still find their allocator.
  static CachingAllocator* allocator = new CachingAllocator(CachingAllocator::Driver{
      "cuda:0",
      [](size_t n) -> void* {
        void* p = nullptr;
        const cudaError_t error = cudaMalloc(&p, n);
        if (error == cudaErrorMemoryAllocation) {
          cudaGetLastError();  // not sticky: clear it, the caller retries or reports it
          return nullptr;
        }
        GLANCE_CUDA_CHECK(error);
        return p;
      },
      [](void* p) { GLANCE_CUDA_CHECK(cudaFree(p)); },
      []() -> std::string {
        size_t free_bytes = 0, total = 0;
        if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
          cudaGetLastError();
          return "device memory: unknown";
        }
        return "device memory: " + format_bytes(free_bytes) + " free of " + format_bytes(total);
      }});
  return *allocator;
}

AllocatorStats allocator_stats() { return device_allocator().stats(); }
void empty_cache() { device_allocator().empty_cache(); }

}  // namespace glance::cuda
