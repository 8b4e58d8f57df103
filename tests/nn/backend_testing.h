// Installing a test Backend for the CPU: a subclass of CpuBackend that overrides some optional methods
// (attention, the fused ops), so a test can check that nn reaches them, without a GPU.
#pragma once
#include "tensor/backend.h"
#include "tensor/cpu/cpu_backend.h"

namespace glance::testing {

// `backend` serves DeviceType::CPU while alive (tensor/backend.h: register_backend); the built-in CPU backend
// after. Tensors made meanwhile stay valid after: a test backend allocates as the built-in one does.
class ScopedCpuBackend {
 public:
  explicit ScopedCpuBackend(Backend* backend) { register_backend(DeviceType::CPU, backend); }
  ~ScopedCpuBackend() { register_backend(DeviceType::CPU, nullptr); }
  ScopedCpuBackend(const ScopedCpuBackend&) = delete;
  ScopedCpuBackend& operator=(const ScopedCpuBackend&) = delete;
};

}  // namespace glance::testing
