#include <stdexcept>

#include "tensor/backend.h"
#include "tensor/device.h"

namespace glance {

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int index = std::stoi(text.substr(5), &used);
      if (used == text.size() - 5 && index >= 0) return Device::cuda(index);
    } catch (const std::exception&) {
    }
  }
  throw std::invalid_argument("parse_device: '" + text + "' is not a device (expected cpu, cuda or cuda:N)");
}

// ---- the backend registry: one slot per device type ----
namespace {
Backend* g_backends[2] = {nullptr, nullptr};
}
Backend* cpu_backend_instance();  // tensor/cpu/cpu_backend.cpp
// The CUDA backend of a program that links glance_cuda (cuda/cuda_backend.cu defines it). Declared weak: in a
// program without it the symbol is null, and backend_for says the backend is not linked. Nothing registers
// itself at start-up; backend_for asks here when a CUDA tensor first needs a backend.
Backend* linked_cuda_backend() __attribute__((weak));

void register_backend(DeviceType type, Backend* backend) { g_backends[static_cast<int>(type)] = backend; }

Backend& backend_for(Device device) {
  Backend* b = g_backends[static_cast<int>(device.type)];
  if (device.is_cpu()) return b ? *b : *cpu_backend_instance();  // a registered CPU backend replaces the built-in one
  if (!b && linked_cuda_backend) b = linked_cuda_backend();       // a registered one (tests) goes first
  if (!b) {
#ifdef GLANCE_BUILT_WITH_CUDA
    // Built with CUDA, but this program does not contain the backend: it was not linked with glance_cuda
    // (cuda/CMakeLists.txt says how), so nothing registered itself for DeviceType::CUDA.
    throw std::runtime_error("backend_for: no backend for device " + device.str() +
                             ": the CUDA backend is not linked into this program (link it with glance_cuda)");
#else
    throw std::runtime_error("backend_for: no backend for device " + device.str() +
                             ": glance was built without CUDA (configure with -DGLANCE_CUDA=ON on a machine with nvcc)");
#endif
  }
  b->check_device(device);  // throws, naming the device, when it is not there (e.g. no CUDA device present)
  return *b;
}

}  // namespace glance
