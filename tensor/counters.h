// Counters that benchmarks and experiments read: how many bytes tensors hold (now and at the peak) per
// kind of device, and how much matrix-multiply work ops::matmul has done.
//
//   reset_peak_memory(DeviceType::CPU); int64_t f0 = matmul_flops();
//   ... run a forward pass ...
//   memory_stats(DeviceType::CPU).peak   -> the most bytes tensors held at once meanwhile
//   matmul_flops() - f0                  -> 2*M*N*K summed over every matmul meanwhile
//
// Only tensor storage is counted (not the allocator's own caches or the program's other memory), and
// the work of ops::matmul and of the CPU's attention kernels (the tiled one adds its GEMM calls itself).
#pragma once
#include <cstdint>

#include "tensor/device.h"

namespace glance {

struct MemoryStats {
  int64_t in_use = 0;       // bytes held by live tensor storages now
  int64_t peak = 0;         // the most held at once since the last reset_peak_memory
  int64_t allocations = 0;  // storages created since start
};
MemoryStats memory_stats(DeviceType type = DeviceType::CPU);
void reset_peak_memory(DeviceType type = DeviceType::CPU);  // peak := in_use

int64_t matmul_flops();  // 2*M*N*K over every ops::matmul (and CPU attention product) since start

namespace counters {  // called by Storage, ops::matmul and the CPU attention
void on_allocate(DeviceType type, int64_t bytes);
void on_free(DeviceType type, int64_t bytes);
void on_matmul(int64_t flops);
}  // namespace counters

}  // namespace glance
