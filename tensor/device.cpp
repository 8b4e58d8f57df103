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

void register_backend(DeviceType type, Backend* backend) { g_backends[static_cast<int>(type)] = backend; }

Backend& backend_for(Device device) {
  if (device.is_cpu()) return *cpu_backend_instance();
  Backend* b = g_backends[static_cast<int>(device.type)];
  if (!b) {
    throw std::runtime_error("backend_for: no backend for device " + device.str() +
                             " (glance was built without CUDA, or the CUDA backend was not initialised)");
  }
  return *b;
}

}  // namespace glance
