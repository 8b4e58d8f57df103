// Storage: one block of bytes on one device. Tensors that are views of each other share a Storage.
#pragma once
#include <cstddef>
#include <memory>

#include "tensor/device.h"

namespace glance {

class Storage {
 public:
  // Allocates `nbytes` on `device` through that device's Backend (uninitialised).
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace glance
