#include "tensor/storage.h"

#include "tensor/backend.h"
#include "tensor/counters.h"

namespace glance {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = backend_for(device).allocate(nbytes);
  counters::on_allocate(device.type, static_cast<int64_t>(nbytes));
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_, nbytes_);
  counters::on_free(device_.type, static_cast<int64_t>(nbytes_));
}

}  // namespace glance
