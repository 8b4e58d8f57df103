// The caching allocator. Its logic is tested on the host with a fake driver (no GPU needed: these run
// everywhere), then the device instance on cudaMalloc (skipped without a GPU).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "cuda/allocator.h"
#include "cuda_testing.h"
#include "tensor/poison.h"

using glance::cuda::AllocatorStats;
using glance::cuda::CachingAllocator;

namespace {

// A driver on malloc with a capacity: refuses (returns nullptr) once `capacity` bytes are out.
struct FakeDriver {
  size_t capacity = size_t(1) << 30;
  size_t out = 0;
  int allocs = 0, frees = 0;
  std::set<void*> live;

  CachingAllocator::Driver driver() {
    return CachingAllocator::Driver{
        "fake:0",
        [this](size_t n) -> void* {
          if (out + n > capacity) return nullptr;
          void* p = std::malloc(n);
          out += n;
          ++allocs;
          live.insert(p);
          sizes[p] = n;
          return p;
        },
        [this](void* p) {
          out -= sizes[p];
          ++frees;
          live.erase(p);
          std::free(p);
        },
        [this] { return "fake device: " + std::to_string(capacity - out) + " bytes free"; }};
  }
  std::map<void*, size_t> sizes;
};

}  // namespace

TEST(CudaAllocatorLogic, SizeClasses) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(size_t(1) << 20), size_t(1) << 20);            // 1 MiB: still small
  EXPECT_EQ(CachingAllocator::round_size((size_t(1) << 20) + 1), size_t(2) << 20);      // large: 2 MiB steps
  EXPECT_EQ(CachingAllocator::round_size((size_t(2) << 20) + 1), size_t(4) << 20);
}

TEST(CudaAllocatorLogic, FreedBlockIsReusedForTheSameSizeClass) {
  FakeDriver fake;
  CachingAllocator alloc(fake.driver());
  void* a = alloc.allocate(1000);  // class 1024
  alloc.deallocate(a);
  void* b = alloc.allocate(700);   // same class: the cached block, no driver call
  EXPECT_EQ(a, b);
  EXPECT_EQ(fake.allocs, 1);
  void* c = alloc.allocate(3000);  // another class: a new block
  EXPECT_NE(c, b);
  EXPECT_EQ(fake.allocs, 2);
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.allocations, 3);
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_EQ(s.driver_allocs, 2);
  EXPECT_EQ(s.in_use, 1024 + 3072);
  EXPECT_EQ(s.cached, 0);
  alloc.deallocate(b);
  alloc.deallocate(c);
  alloc.empty_cache();
  EXPECT_TRUE(fake.live.empty());
}

TEST(CudaAllocatorLogic, StatsTrackInUsePeakAndCached) {
  FakeDriver fake;
  CachingAllocator alloc(fake.driver());
  void* a = alloc.allocate(512);
  void* b = alloc.allocate(5 << 20);  // 6 MiB class
  EXPECT_EQ(alloc.stats().in_use, 512 + (6 << 20));
  alloc.deallocate(b);
  AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.in_use, 512);
  EXPECT_EQ(s.peak_in_use, 512 + (6 << 20));
  EXPECT_EQ(s.cached, 6 << 20);
  alloc.reset_peak();
  EXPECT_EQ(alloc.stats().peak_in_use, 512);
  alloc.deallocate(a);
  EXPECT_NE(glance::cuda::to_string(alloc.stats()).find("cached 6.0 MiB"), std::string::npos)
      << glance::cuda::to_string(alloc.stats());
  alloc.empty_cache();
}

TEST(CudaAllocatorLogic, EmptyCacheReturnsCachedBlocksToTheDriver) {
  FakeDriver fake;
  CachingAllocator alloc(fake.driver());
  void* a = alloc.allocate(100);
  void* b = alloc.allocate(3 << 20);
  void* keep = alloc.allocate(2000);
  alloc.deallocate(a);
  alloc.deallocate(b);
  EXPECT_EQ(fake.live.size(), 3u);
  alloc.empty_cache();
  EXPECT_EQ(fake.live.size(), 1u);  // only the live block remains
  EXPECT_EQ(fake.frees, 2);
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.cached, 0);
  EXPECT_EQ(s.driver_frees, 2);
  EXPECT_EQ(s.in_use, 2048);
  alloc.deallocate(keep);
  alloc.empty_cache();
}

TEST(CudaAllocatorLogic, OutOfMemoryEmptiesTheCacheAndRetries) {
  FakeDriver fake;
  fake.capacity = 8 << 20;
  CachingAllocator alloc(fake.driver());
  void* a = alloc.allocate(6 << 20);  // 6 MiB out of 8
  alloc.deallocate(a);                // cached, still held from the driver
  void* b = alloc.allocate(4 << 20);  // another class: the driver refuses, the cache is emptied, retry succeeds
  EXPECT_NE(b, nullptr);
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.oom_retries, 1);
  EXPECT_EQ(s.cached, 0);
  EXPECT_EQ(s.driver_frees, 1);
  alloc.deallocate(b);
  alloc.empty_cache();
}

TEST(CudaAllocatorLogic, OutOfMemoryMessageNamesTheRequestAndTheStatistics) {
  FakeDriver fake;
  fake.capacity = 4 << 20;
  CachingAllocator alloc(fake.driver());
  void* a = alloc.allocate(1000);
  std::string msg;
  try {
    alloc.allocate(size_t(10) << 20);
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("fake:0: out of memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tried to allocate 10.0 MiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(size_t(10) << 20) + " bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("in use 1.0 KiB"), std::string::npos) << msg;  // the allocator's statistics
  EXPECT_NE(msg.find("fake device:"), std::string::npos) << msg;    // the driver's description
  alloc.deallocate(a);
  alloc.empty_cache();
}

TEST(CudaAllocatorLogic, FreeingAnUnknownPointerIsAnError) {
  FakeDriver fake;
  CachingAllocator alloc(fake.driver());
  int x = 0;
  EXPECT_THROW(alloc.deallocate(&x), std::invalid_argument);
  void* a = alloc.allocate(10);
  alloc.deallocate(a);
  EXPECT_THROW(alloc.deallocate(a), std::invalid_argument);  // freed twice
  alloc.empty_cache();
}

// ---- the device allocator ----

TEST(CudaAllocator, FreedBlockIsReused) {
  GLANCE_REQUIRE_CUDA();
  auto& alloc = glance::cuda::device_allocator();
  void* a = alloc.allocate(12345);  // the 512-byte class 12800
  alloc.deallocate(a);
  const AllocatorStats before = alloc.stats();
  void* b = alloc.allocate(12300);  // the same class (12800)
  EXPECT_EQ(a, b);
  EXPECT_EQ(alloc.stats().cache_hits, before.cache_hits + 1);
  EXPECT_EQ(alloc.stats().driver_allocs, before.driver_allocs);
  alloc.deallocate(b);
}

TEST(CudaAllocator, TensorsGoThroughTheAllocator) {
  GLANCE_REQUIRE_CUDA();
  const AllocatorStats before = glance::cuda::allocator_stats();
  {
    glance::Tensor t = glance::ops::zeros({1000, 1000}, glance::DType::Float32, glance::Device::cuda());
    EXPECT_EQ(glance::cuda::allocator_stats().in_use, before.in_use + (4 << 20));  // 4 MB -> the 4 MiB class
  }
  const AllocatorStats after = glance::cuda::allocator_stats();
  EXPECT_EQ(after.in_use, before.in_use);
  EXPECT_GE(after.cached, 4 << 20);
}

TEST(CudaAllocator, EmptyCacheReleasesEverythingCached) {
  GLANCE_REQUIRE_CUDA();
  { glance::Tensor t = glance::ops::zeros({3 << 20}, glance::DType::Float32, glance::Device::cuda()); }
  EXPECT_GT(glance::cuda::allocator_stats().cached, 0);
  glance::cuda::empty_cache();
  EXPECT_EQ(glance::cuda::allocator_stats().cached, 0);
}

TEST(CudaAllocator, AbsurdRequestThrowsWithSizeAndStatistics) {
  GLANCE_REQUIRE_CUDA();
  std::string msg;
  try {
    glance::cuda::device_allocator().allocate(size_t(1) << 50);  // 1 PiB
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("cuda:0: out of memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1.0 PiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("caching allocator: in use"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device memory:"), std::string::npos) << msg;
  // The allocator still works afterwards.
  void* p = glance::cuda::device_allocator().allocate(100);
  glance::cuda::device_allocator().deallocate(p);
}

TEST(CudaAllocator, PoisonedMemoryReadsAsNaN) {
  GLANCE_REQUIRE_CUDA();
  glance::PoisonNewMemory poison;
  glance::Tensor t = glance::ops::empty({5}, glance::DType::Float32, glance::Device::cuda());
  for (double v : glance::cuda_testing::values(t)) EXPECT_TRUE(std::isnan(v));
}
