// cudasim: "device" memory is host memory, so the CPU backend can serve Device::cuda() too. This lets the
// autograd kernel "fused" (glance Tensors on cuda, with ops::zeros / copy_ / narrow / to_device) run.
#include "tensor/backend.h"
namespace {
const bool registered = [] {
  glance::register_backend(glance::DeviceType::CUDA, &glance::backend_for(glance::Device::cpu()));
  return true;
}();
}
