// cudasim: runs CUDA kernel source on the CPU, one CTA at a time, each CUDA thread a ucontext fiber on a
// single OS thread, switched cooperatively at __syncthreads, __syncwarp and shuffles. A checking tool for
// machines without a GPU, not a performance tool.
//
// What it checks: indexing, masking, the online softmax, tile edges, every write an output gets (buffers
// poisoned), shared memory read before it is written (shared memory is NaN-poisoned per CTA), missing
// barriers (fibers run one after another up to their next barrier: a lane that reads what another lane
// writes before the barrier that should separate them reads stale data; SIM_REVERSE=1 runs the lanes in
// the opposite order), overruns past the end of shared memory and of device buffers (guard pages), WMMA
// pointer alignment and leading dimensions, divergent barriers (deadlock is reported).
// What it does not check: timing, bank conflicts, occupancy, real tensor-core or MUFU rounding, the
// memory model beyond barriers, register/shared-memory limits of the real chip.
#pragma once
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

namespace sim {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cudasim: %s\n", what);
  std::abort();
}

// Memory whose end touches a PROT_NONE page: reading or writing past it faults at once.
inline void* guarded_alloc(size_t bytes, size_t align) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t body = (bytes + page - 1) / page * page + page;  // at least one slack page in front
  char* base = static_cast<char*>(mmap(nullptr, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) fail("mmap failed");
  mprotect(base + body, page, PROT_NONE);
  uintptr_t start = reinterpret_cast<uintptr_t>(base + body) - bytes;
  start -= start % align;
  return reinterpret_cast<void*>(start);
}
// base and length of each device allocation's mapping, to unmap it on free
inline std::map<void*, std::pair<void*, size_t>>& allocations() {
  static std::map<void*, std::pair<void*, size_t>> m;
  return m;
}
inline void* device_alloc(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t body = (bytes + page - 1) / page * page + page;
  char* base = static_cast<char*>(mmap(nullptr, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) fail("mmap failed");
  mprotect(base + body, page, PROT_NONE);
  uintptr_t start = reinterpret_cast<uintptr_t>(base + body) - bytes;
  start -= start % 16;
  allocations()[reinterpret_cast<void*>(start)] = {base, body + page};
  return reinterpret_cast<void*>(start);
}
inline void device_free(void* p) {
  auto it = allocations().find(p);
  if (it == allocations().end()) return;
  munmap(it->second.first, it->second.second);
  allocations().erase(it);
}

// ---- fibers --------------------------------------------------------------------------------------
enum class State { Running, BlockBarrier, WarpBarrier, Done };
struct Fiber {
  ucontext_t ctx;
  dim3 tid;
  int linear = 0;
  State state = State::Running;
  std::vector<char> stack;
};
inline std::vector<Fiber> fibers;
inline Fiber* cur = nullptr;
inline ucontext_t scheduler;
inline const std::function<void()>* body = nullptr;
inline dim3 block_idx, grid_dim, block_dim;
inline unsigned char* smem_base = nullptr;
inline float xchg[32][32];
inline bool reverse_order() {
  static const bool r = [] { const char* e = std::getenv("SIM_REVERSE"); return e && *e == '1'; }();
  return r;
}

inline void yield() { swapcontext(&cur->ctx, &scheduler); }
inline void syncthreads() {
  cur->state = State::BlockBarrier;
  yield();
}
inline void syncwarp() {
  cur->state = State::WarpBarrier;
  yield();
}
inline int lane() { return cur->linear % 32; }
inline int warp() { return cur->linear / 32; }
inline unsigned char* shared_memory() { return smem_base; }

inline void trampoline() {
  (*body)();
  cur->state = State::Done;
  // returns to uc_link = scheduler
}

inline void run_block(int threads) {
  if (static_cast<int>(fibers.size()) != threads) {
    fibers.clear();
    fibers.resize(threads);
    for (auto& f : fibers) f.stack.resize(256 * 1024);
  }
  for (int t = 0; t < threads; ++t) {
    Fiber& f = fibers[t];
    f.linear = t;
    f.tid = dim3(static_cast<unsigned>(t), 0, 0);
    f.state = State::Running;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &scheduler;
    makecontext(&f.ctx, trampoline, 0);
  }
  for (;;) {
    bool ran = false;
    for (int i = 0; i < threads; ++i) {
      Fiber& f = fibers[reverse_order() ? threads - 1 - i : i];
      if (f.state != State::Running) continue;
      cur = &f;
      swapcontext(&scheduler, &f.ctx);
      ran = true;
    }
    (void)ran;
    int done = 0, at_block = 0, at_warp = 0;
    for (auto& f : fibers) {
      done += f.state == State::Done;
      at_block += f.state == State::BlockBarrier;
      at_warp += f.state == State::WarpBarrier;
    }
    if (done == threads) return;
    bool released = false;
    // Warp barriers: release a warp once all its live lanes wait at one.
    for (int w = 0; w * 32 < threads; ++w) {
      int waiting = 0, live = 0;
      for (int l = 0; l < 32 && w * 32 + l < threads; ++l) {
        const State s = fibers[w * 32 + l].state;
        live += s != State::Done;
        waiting += s == State::WarpBarrier;
      }
      if (waiting > 0 && waiting == live) {
        if (live != 32 && live != threads) fail("__syncwarp / shuffle with exited lanes in the warp");
        for (int l = 0; l < 32; ++l) fibers[w * 32 + l].state = State::Running;
        released = true;
      }
    }
    if (released) continue;
    if (at_block > 0 && at_block + done == threads) {
      if (done > 0) fail("__syncthreads reached by some threads after others exited (divergent exit)");
      for (auto& f : fibers) f.state = State::Running;
      continue;
    }
    fail("deadlock: threads wait at different barriers");
  }
}

inline void launch(dim3 grid, dim3 block, int smem_bytes, void* /*stream*/, const std::function<void()>& kernel) {
  if (smem_bytes > 227 * 1024) fail("more dynamic shared memory than an H100 block may have");
  const int threads = static_cast<int>(block.x * block.y * block.z);
  grid_dim = grid, block_dim = block;
  body = &kernel;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        block_idx = dim3(x, y, z);
        static void* region = nullptr;
        static int region_bytes = -1;
        if (region_bytes != smem_bytes) {
          region = smem_bytes > 0 ? guarded_alloc(static_cast<size_t>(smem_bytes), 128) : nullptr;
          region_bytes = smem_bytes;
        }
        smem_base = static_cast<unsigned char*>(region);
        if (smem_bytes > 0) std::memset(smem_base, 0xFF, static_cast<size_t>(smem_bytes));  // NaN
        run_block(threads);
      }
}

}  // namespace sim

#define threadIdx (::sim::cur->tid)
#define blockIdx (::sim::block_idx)
#define gridDim (::sim::grid_dim)
#define blockDim (::sim::block_dim)

inline void __syncthreads() { sim::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { sim::syncwarp(); }
inline float __shfl_xor_sync(unsigned, float v, int offset) {
  const int w = sim::warp(), l = sim::lane();
  sim::xchg[w][l] = v;
  sim::syncwarp();
  const float r = sim::xchg[w][l ^ offset];
  sim::syncwarp();
  return r;
}
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
[[noreturn]] inline void __trap() { sim::fail("__trap"); }

// ---- 16-bit types ------------------------------------------------------------------------------------
struct __nv_bfloat16 {
  uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return {0x7FC0};
  u += 0x7FFFu + ((u >> 16) & 1u);
  return {static_cast<uint16_t>(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
struct __half {
  _Float16 v;
};
inline __half __float2half_rn(float f) { return {static_cast<_Float16>(f)}; }
inline float __half2float(__half h) { return static_cast<float>(h.v); }
namespace sim {
inline float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
inline float to_f(__half x) { return __half2float(x); }
inline float to_f(float x) { return x; }
}  // namespace sim

// ---- the runtime API, on host memory -------------------------------------------------------------------
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
using cudaStream_t = void*;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
enum cudaDeviceAttr { cudaDevAttrComputeCapabilityMajor, cudaDevAttrMaxSharedMemoryPerBlockOptin };
enum cudaMemoryType { cudaMemoryTypeUnregistered, cudaMemoryTypeHost, cudaMemoryTypeDevice, cudaMemoryTypeManaged };
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "cudasim error"; }
inline const char* cudaGetErrorName(cudaError_t) { return "cudasimError"; }
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = sim::device_alloc(n);
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaMalloc(T** p, size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFree(void* p) {
  sim::device_free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  if (n) std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
  return cudaMemcpy(d, s, n, k);
}
inline cudaError_t cudaMemset(void* d, int v, size_t n) {
  std::memset(d, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(d, v, n); }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  *v = a == cudaDevAttrComputeCapabilityMajor ? 9 : 227 * 1024;
  return cudaSuccess;
}
inline cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void*) {
  a->type = cudaMemoryTypeDevice;
  return cudaSuccess;
}
