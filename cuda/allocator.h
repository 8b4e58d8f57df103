// A caching allocator for device memory.
//
// Why: cudaMalloc and cudaFree are slow (cudaFree also waits for the whole device to go idle), and a
// training step creates and drops thousands of tensors of the same few sizes. So freed blocks are not
// returned to the driver: they are kept on a free list and handed out again to the next request of the
// same size class.
//
//   size classes   a request is rounded up: to a multiple of 512 B up to 1 MiB ("small"), above that to a
//                  multiple of 2 MiB ("large"). A block serves exactly one size class; blocks are never
//                  split or merged (simple, and fragmentation stays bounded by the rounding: at most 511 B
//                  per small block, under 2 MiB per large one).
//   allocate       the free list of the size class first (a "cache hit"), else the driver (cudaMalloc).
//   deallocate     the block goes onto its free list; nothing is returned to the driver.
//   empty_cache    returns every cached (free) block to the driver.
//   out of memory  when the driver refuses, the cache is emptied and the request retried once; if the driver
//                  refuses again, a std::runtime_error names the request and the allocator's statistics.
//
// Ordering: every kernel in glance runs on one stream (the legacy default stream), so a block freed on the
// host while a kernel still reads it can only be handed to work queued *after* that kernel: reuse needs no
// events. (A multi-stream version would have to record an event per block, as PyTorch's allocator does.)
//
// The class itself knows nothing of CUDA: it is built on a Driver (a raw allocate and free), so its logic is
// tested on the host with a fake driver (tests/cuda/test_allocator.cpp), and device_allocator() is the
// instance on cudaMalloc / cudaFree. Thread-safe (one mutex).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace glance::cuda {

struct AllocatorStats {
  int64_t in_use = 0;         // bytes in blocks handed out and not yet freed (rounded sizes)
  int64_t peak_in_use = 0;    // the most in_use since start (or since reset_peak)
  int64_t cached = 0;         // bytes in free blocks kept for reuse
  int64_t allocations = 0;    // allocate() calls
  int64_t cache_hits = 0;     // ... of which were served from a free list
  int64_t driver_allocs = 0;  // successful driver allocations (cudaMalloc)
  int64_t driver_frees = 0;   // blocks returned to the driver (cudaFree, by empty_cache)
  int64_t oom_retries = 0;    // times the driver refused, the cache was emptied and the request retried
};
// "in use 4.0 MiB (peak 6.0 MiB), cached 2.0 MiB, 17 allocations, 9 cache hits, 8 driver allocations, ..."
std::string to_string(const AllocatorStats& stats);
// "512 B", "1.5 KiB", "2.0 MiB", "1.0 TiB"
std::string format_bytes(uint64_t bytes);

class CachingAllocator {
 public:
  struct Driver {
    std::string name;                         // the device, for messages ("cuda:0")
    std::function<void*(size_t)> allocate;    // a new block, or nullptr when out of memory (throws on other errors)
    std::function<void(void*)> free;          // gives a block back
    std::function<std::string()> describe;    // optional: more for the out-of-memory message (free device memory)
  };

  static constexpr size_t kSmallAlignment = 512;
  static constexpr size_t kSmallLimit = size_t(1) << 20;     // 1 MiB: up to here requests are "small"
  static constexpr size_t kLargeAlignment = size_t(2) << 20; // 2 MiB

  explicit CachingAllocator(Driver driver);
  // Does not give cached blocks back: the process-wide allocator is never destroyed (see cuda_backend.cu),
  // and a test's allocator calls empty_cache() itself.
  ~CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The size class of a request: the bytes a block for it really has. 0 bytes get a 512-byte block, so every
  // tensor has a valid, distinct pointer.
  static size_t round_size(size_t nbytes);

  void* allocate(size_t nbytes);
  // `ptr` must come from allocate() of this allocator and not be freed yet (else std::invalid_argument).
  void deallocate(void* ptr);
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();

 private:
  void* allocate_from_driver(size_t nbytes, size_t rounded);  // with the lock held
  void empty_cache_locked();
  [[noreturn]] void throw_out_of_memory(size_t nbytes, size_t rounded);

  mutable std::mutex mutex_;
  Driver driver_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live_;     // block handed out -> its size class
  AllocatorStats stats_;
};

// The process-wide allocator of the CUDA device (cudaMalloc / cudaFree), created on first use.
CachingAllocator& device_allocator();
AllocatorStats allocator_stats();  // device_allocator().stats()
void empty_cache();                // device_allocator().empty_cache()

// Scratch memory for a kernel's temporaries (a reduction's partial results, a contiguous copy of a matmul
// operand), from the device allocator and back to it when the buffer goes out of scope. Freeing right after
// queueing the kernels that use it is safe: the block can only be handed to work queued later on the same
// stream (see the note on ordering above).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t nbytes) : ptr_(device_allocator().allocate(nbytes)) {}
  ~DeviceBuffer() { device_allocator().deallocate(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_;
};

}  // namespace glance::cuda
