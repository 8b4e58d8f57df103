// CudaBackend, part 1: registration, device checks, memory and host <-> device copies.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "tensor/poison.h"

namespace glance::cuda {

// ---- registration ----

CudaBackend* backend_instance() {
  // Never destroyed: a Tensor held by some static object may free its storage during program exit, after
  // function-local statics are gone, and must still find a live backend (the CPU backend does the same).
  static CudaBackend* backend = new CudaBackend();
  return backend;
}

}  // namespace glance::cuda

// What tensor/device.cpp's backend_for finds for DeviceType::CUDA (declared weak there): defined here, so a
// program that links glance_cuda has a CUDA backend, and one that does not gets a clear "not linked" error.
// glance_cuda is an OBJECT library (cuda/CMakeLists.txt): its object files are always linked whole, so this
// definition is there in every program that names glance_cuda, whether or not the program calls into it.
glance::Backend* glance::linked_cuda_backend() { return glance::cuda::backend_instance(); }

namespace glance::cuda {

// ---- device checks ----

namespace {
struct DeviceInfo {
  int count = 0;
  std::string why_none;  // the runtime's reason when count is 0
  int major = 0, minor = 0;  // cuda:0's compute capability
};

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo i;
    const cudaError_t error = cudaGetDeviceCount(&i.count);
    if (error != cudaSuccess) {
      cudaGetLastError();  // clear it: "no driver" / "no device" is an answer here, not a failure
      i.count = 0;
      i.why_none = std::string(cudaGetErrorString(error)) + ", " + cudaGetErrorName(error);
    } else if (i.count == 0) {
      i.why_none = "cudaGetDeviceCount returned 0";
    } else if (cudaDeviceGetAttribute(&i.major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
               cudaDeviceGetAttribute(&i.minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess) {
      cudaGetLastError();
      i.major = i.minor = 0;  // unknown: check_device says so
    }
    return i;
  }();
  return info;
}
}  // namespace

void CudaBackend::check_device(Device device) {
  const DeviceInfo& info = device_info();
  if (info.count == 0) {
    throw std::runtime_error(device.str() + ": no CUDA device present (" + info.why_none +
                             "); glance::cuda::available() tells whether there is one");
  }
  if (device.index >= info.count) {
    throw std::runtime_error(device.str() + ": only " + std::to_string(info.count) + " CUDA device" +
                             (info.count > 1 ? "s" : "") + " present");
  }
  if (device.index != 0) {
    throw std::runtime_error(device.str() + ": the CUDA backend runs on cuda:0 only (one GPU per process)");
  }
  // The kernels are compiled for sm_80 and sm_90 (+ PTX), and use bf16 and sm_80 instructions: an older GPU
  // would fail at its first kernel with "no kernel image"; say why here instead.
  if (info.major < 8) {
    const std::string cc = info.major == 0 ? "an unreadable compute capability"
                                           : "compute capability " + std::to_string(info.major) + "." +
                                                 std::to_string(info.minor);
    throw std::runtime_error(device.str() + " has " + cc + "; glance's CUDA backend needs 8.0 or newer (Ampere, "
                             "Ada, Hopper and later)");
  }
}

void require_cuda(const Tensor& t, const char* what) {
  if (!t.device().is_cuda()) {
    throw std::invalid_argument(std::string("cuda ") + what + ": tensor is on " + t.device().str() +
                                ", expected cuda:0 (move it with to_device)");
  }
}

void synchronize() { GLANCE_CUDA_CHECK(cudaDeviceSynchronize()); }

// ---- memory ----

void* CudaBackend::allocate(size_t nbytes) {
  void* ptr = device_allocator().allocate(nbytes);
  // Poisoned memory (tensor/poison.h), for tests: 0xFF bytes read as NaN in float32/float64, so a kernel that
  // forgets an element of its output shows it. The block is at least nbytes long (rounded up).
  if (poison_new_memory() && nbytes > 0) GLANCE_CUDA_CHECK(cudaMemsetAsync(ptr, 0xFF, nbytes, 0));
  return ptr;
}

void CudaBackend::deallocate(void* ptr, size_t) { device_allocator().deallocate(ptr); }

// ---- host <-> device copies ----
//
// cudaMemcpy from ordinary (pageable) host memory cannot be done by the GPU's copy engine directly: the driver
// first copies the bytes into a pinned (page-locked) buffer of its own, chunk by chunk, and waits for each
// transfer. For large copies we do that staging ourselves with two pinned buffers, so that the host memcpy
// into one buffer overlaps the DMA transfer out of the other:
//
//   chunk 0: memcpy src -> pinned[0]; async copy pinned[0] -> dst; record done[0]
//   chunk 1: memcpy src -> pinned[1]; async copy pinned[1] -> dst; record done[1]
//   chunk 2: wait done[0]; memcpy src -> pinned[0]; ...
//
// Small copies (under kStagingThreshold) go straight through cudaMemcpy: the driver's own path is fine there.
// copy_to_host works the same way backwards. Both return only when the caller's memory is no longer needed
// (copy_from_host: once the last chunk is in a pinned buffer; copy_to_host: once dst holds every byte).
// Kernels queued later on the default stream run after the transfers, so they see the data.
namespace {

constexpr size_t kStagingThreshold = size_t(1) << 20;  // 1 MiB
constexpr size_t kStagingChunk = size_t(4) << 20;      // 4 MiB per pinned buffer

struct Staging {
  std::mutex mutex;  // one copy at a time uses the buffers
  bool ready = false, failed = false;
  void* buffer[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};

  // Allocates the pinned buffers on first use. If pinned memory is refused (some containers limit locked
  // memory), copies fall back to plain cudaMemcpy for good.
  bool available() {
    if (ready || failed) return ready;
    for (int k = 0; k < 2; ++k) {
      if (cudaMallocHost(&buffer[k], kStagingChunk) != cudaSuccess) {
        cudaGetLastError();
        failed = true;
        return false;
      }
      GLANCE_CUDA_CHECK(cudaEventCreateWithFlags(&done[k], cudaEventDisableTiming));
    }
    ready = true;
    return true;
  }
};

Staging& staging() {
  static Staging* s = new Staging();  // never destroyed (the driver may be gone at exit)
  return *s;
}

}  // namespace

void CudaBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  Staging& s = staging();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (nbytes < kStagingThreshold || !s.available()) {
    lock.unlock();
    GLANCE_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
    return;
  }
  char* d = static_cast<char*>(dst);
  const char* h = static_cast<const char*>(src);
  int k = 0;
  for (size_t at = 0; at < nbytes; at += kStagingChunk, k ^= 1) {
    const size_t len = std::min(kStagingChunk, nbytes - at);
    // A never-recorded event counts as complete, so the first use of each buffer does not wait.
    GLANCE_CUDA_CHECK(cudaEventSynchronize(s.done[k]));  // the previous transfer out of buffer k is over
    std::memcpy(s.buffer[k], h + at, len);
    GLANCE_CUDA_CHECK(cudaMemcpyAsync(d + at, s.buffer[k], len, cudaMemcpyHostToDevice, 0));
    GLANCE_CUDA_CHECK(cudaEventRecord(s.done[k], 0));
  }
  // The last transfers may still be reading the pinned buffers; the next copy waits on their events. The
  // caller's src is not needed any more: every byte of it is in a pinned buffer or already on the device.
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  Staging& s = staging();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (nbytes < kStagingThreshold || !s.available()) {
    lock.unlock();
    GLANCE_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
    return;
  }
  char* h = static_cast<char*>(dst);
  const char* d = static_cast<const char*>(src);
  const size_t chunks = (nbytes + kStagingChunk - 1) / kStagingChunk;
  auto start = [&](size_t c) {  // queue the transfer of chunk c into buffer c % 2
    const size_t at = c * kStagingChunk, len = std::min(kStagingChunk, nbytes - at);
    GLANCE_CUDA_CHECK(cudaMemcpyAsync(s.buffer[c % 2], d + at, len, cudaMemcpyDeviceToHost, 0));
    GLANCE_CUDA_CHECK(cudaEventRecord(s.done[c % 2], 0));
  };
  // Wait for any transfer of an earlier copy_from_host still reading the buffers before overwriting them.
  GLANCE_CUDA_CHECK(cudaEventSynchronize(s.done[0]));
  GLANCE_CUDA_CHECK(cudaEventSynchronize(s.done[1]));
  start(0);
  for (size_t c = 0; c < chunks; ++c) {
    // Queue chunk c+1 into the other buffer (which the host finished reading in the previous iteration),
    // then wait for chunk c and copy it out while c+1 is in flight.
    if (c + 1 < chunks) start(c + 1);
    GLANCE_CUDA_CHECK(cudaEventSynchronize(s.done[c % 2]));
    const size_t at = c * kStagingChunk, len = std::min(kStagingChunk, nbytes - at);
    std::memcpy(h + at, s.buffer[c % 2], len);
  }
}

}  // namespace glance::cuda
