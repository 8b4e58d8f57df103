// CpuBackend, part 1: memory. The kernels are in the sibling files listed in cpu_backend.h.
#include "tensor/cpu/cpu_backend.h"
#include "tensor/op_profile.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace glance {

namespace {
// 64 bytes: one cache line, and the width of an AVX-512 register, so aligned vector loads are possible
// and no two tensors share a cache line.
constexpr size_t kAlignment = 64;
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  const op_profile::Scope profile_scope(OpKind::Memory);
  // std::aligned_alloc wants a size that is a multiple of the alignment. An empty tensor still gets a
  // real (one-line) block, so every Storage holds a valid pointer and no code needs a null special case.
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuBackend::deallocate(void* ptr, size_t) {
  const op_profile::Scope profile_scope(OpKind::Memory);
  std::free(ptr);
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  const op_profile::Scope profile_scope(OpKind::Memory);
  if (nbytes) std::memcpy(dst, src, nbytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  const op_profile::Scope profile_scope(OpKind::Memory);
  if (nbytes) std::memcpy(dst, src, nbytes);
}

Backend* cpu_backend_instance() {
  // Constructed on first use (thread-safe since C++11) and deliberately never destroyed: a Tensor held in
  // some other static object may free its Storage during program exit, after function-local statics
  // are gone, and must still find a live backend.
  static CpuBackend* backend = new CpuBackend();
  return backend;
}

}  // namespace glance
