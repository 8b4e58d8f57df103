#include "tensor/storage.h"

#include "tensor/backend.h"
#include "tensor/counters.h"
#include "tensor/poison.h"

#include <atomic>
#include <cstring>

namespace glance {

namespace {
std::atomic<bool> poison{false};
}  // namespace

void set_poison_new_memory(bool on) { poison.store(on); }
bool poison_new_memory() { return poison.load(); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = backend_for(device).allocate(nbytes);
  counters::on_allocate(device.type, static_cast<int64_t>(nbytes));
  // (CPU only for now; a device backend poisons in its own allocator.)
  if (poison.load() && data_ != nullptr && device.is_cpu()) std::memset(data_, 0xFF, nbytes);
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_, nbytes_);
  counters::on_free(device_.type, static_cast<int64_t>(nbytes_));
}

}  // namespace glance
