#include "tensor/counters.h"

#include <atomic>

namespace glance {

namespace {

struct DeviceCounters {
  std::atomic<int64_t> in_use{0}, peak{0}, allocations{0};
};

DeviceCounters& of(DeviceType type) {
  static DeviceCounters cpu, cuda;
  return type == DeviceType::CPU ? cpu : cuda;
}

std::atomic<int64_t> flops{0};

}  // namespace

MemoryStats memory_stats(DeviceType type) {
  DeviceCounters& c = of(type);
  return {c.in_use.load(), c.peak.load(), c.allocations.load()};
}

void reset_peak_memory(DeviceType type) {
  DeviceCounters& c = of(type);
  c.peak.store(c.in_use.load());
}

int64_t matmul_flops() { return flops.load(); }

namespace counters {

void on_allocate(DeviceType type, int64_t bytes) {
  DeviceCounters& c = of(type);
  const int64_t now = c.in_use.fetch_add(bytes) + bytes;
  c.allocations.fetch_add(1);
  int64_t seen = c.peak.load();
  while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
  }
}

void on_free(DeviceType type, int64_t bytes) { of(type).in_use.fetch_sub(bytes); }

void on_matmul(int64_t f) { flops.fetch_add(f); }

}  // namespace counters

}  // namespace glance
