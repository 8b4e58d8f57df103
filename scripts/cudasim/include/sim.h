// cudasim: runs CUDA kernel source on the CPU, one CTA at a time, each CUDA thread a fiber on a single OS
// thread, switched cooperatively at __syncthreads, __syncwarp, shuffles and atomicCAS. A checking tool for
// machines without a GPU, not a performance tool. The runtime API below (memory, copies, events, errors) and
// cublas_v2.h are stand-ins written from the CUDA documentation, so the whole of cuda/ (the Backend, cuBLAS
// matmul included) runs with its own host code.
//
// What it checks: indexing, masking, tile edges, every write an output gets (buffers poisoned), shared memory
// read before it is written (dynamic and static shared memory are NaN-poisoned per CTA), missing barriers
// (fibers run one after another up to their next barrier: a lane that reads what another lane writes before
// the barrier that should separate them reads stale data; SIM_REVERSE=1 runs the lanes in the opposite
// order; SIM_WARP_AHEAD=1 lets each warp run ahead of the others up to the next __syncthreads), overruns past the end of shared memory, of each cudaMalloc buffer and of fiber stacks (guard
// pages), copies and cuBLAS operands that leave their device allocation, WMMA pointer alignment and leading
// dimensions, divergent barriers and shuffles with exited lanes (reported), launch configurations the
// hardware refuses (block and grid limits, dynamic shared memory above the kernel's limit), lost updates in
// compare-and-swap loops (atomicCAS lets the other lanes run first), out-of-memory (SIM_DEVICE_BYTES).
// What it does not check: timing, bank conflicts, occupancy, real tensor-core, MUFU or libdevice rounding,
// the memory model beyond barriers (no reordering, no races between CTAs: CTAs run one after another),
// register/shared-memory limits of the real chip beyond the launch limits, host pointers read by kernels.
#pragma once
#include <dlfcn.h>
#include <execinfo.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// build_backend.sh rewrites every `__shared__` declaration; one it missed does not compile.
#define __shared__ __shared__declaration_not_rewritten_by_cudasim

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;
struct float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

// ---- the runtime's error codes (the values of driver_types.h) -----------------------------------------
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
using cudaError_t = cudaError;

namespace sim {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "cudasim: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

// Memory whose end touches a PROT_NONE page: reading or writing past it faults at once. Returns the start
// (aligned down to `align`, so up to align - 1 bytes of slack may precede the guard) and the mapping.
struct Mapping {
  void* base = nullptr;
  size_t length = 0;
};
inline void* guarded_alloc(size_t bytes, size_t align, Mapping* mapping = nullptr) {
  const size_t page = page_size();
  const size_t body = (bytes + page - 1) / page * page + page;  // at least one slack page in front
  char* base = static_cast<char*>(mmap(nullptr, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (base == MAP_FAILED) fail("mmap of " + std::to_string(bytes) + " bytes failed");
  mprotect(base + body, page, PROT_NONE);
  uintptr_t start = reinterpret_cast<uintptr_t>(base + body) - bytes;
  start -= start % align;
  if (mapping) *mapping = {base, body + page};
  return reinterpret_cast<void*>(start);
}

// ---- the emulated device ---------------------------------------------------------------------------------
// SIM_DEVICES: how many devices cudaGetDeviceCount reports (default 1; 0 emulates a machine without a GPU).
inline int device_count() {
  static const int n = [] {
    const char* e = std::getenv("SIM_DEVICES");
    return e && *e ? std::atoi(e) : 1;
  }();
  return n;
}
// SIM_DEVICE_BYTES: the emulated device memory (default 4 GiB); cudaMalloc beyond it fails with
// cudaErrorMemoryAllocation, as a full GPU does.
inline size_t device_capacity() {
  static const size_t n = [] {
    const char* e = std::getenv("SIM_DEVICE_BYTES");
    return e && *e ? static_cast<size_t>(std::strtoull(e, nullptr, 10)) : (size_t(4) << 30);
  }();
  return n;
}
struct Allocation {
  size_t bytes;
  Mapping mapping;
};
inline std::map<uintptr_t, Allocation>& allocations() {  // device buffers by start address
  static std::map<uintptr_t, Allocation> m;
  return m;
}
inline size_t& device_bytes_used() {
  static size_t n = 0;
  return n;
}
inline std::set<void*>& pinned() {  // cudaMallocHost blocks
  static std::set<void*> s;
  return s;
}
inline std::mutex& api_mutex() {
  static std::mutex m;
  return m;
}

// The device allocation that holds [p, p + n), or nullptr. n = 0 asks for the allocation holding p.
inline const Allocation* find_allocation(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto& m = allocations();
  auto it = m.upper_bound(a);
  if (it == m.begin()) return nullptr;
  --it;
  const uintptr_t start = it->first, end = start + it->second.bytes;
  if (a < start || a > end || (n > 0 && a >= end) || n > end - a) return nullptr;
  return &it->second;
}
inline bool is_device(const void* p) { return find_allocation(p, 0) != nullptr; }

// ---- the sticky "last error" of the runtime -------------------------------------------------------------
inline cudaError_t& last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
inline cudaError_t error(cudaError_t e) {  // a failing call also sets the last error, as the runtime does
  if (e != cudaSuccess) last_error() = e;
  return e;
}

// ---- fibers ------------------------------------------------------------------------------------------------
// A minimal x86-64 context switch (callee-saved registers, the SSE and x87 control words): glibc's
// swapcontext also saves the signal mask with a system call each time, which made the emulation several
// times slower. sim_switch(from, to) stores the current stack pointer in *from and resumes the context whose
// stack pointer is `to`.
extern "C" void cudasim_switch(void** from, void* to);
asm(R"(
.text
.globl cudasim_switch
.type cudasim_switch,@function
.weak cudasim_switch
cudasim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cudasim_switch, .-cudasim_switch
)");

enum class State { Running, BlockBarrier, WarpBarrier, Done };
struct Fiber {
  void* sp = nullptr;
  char* stack_top = nullptr;
  dim3 tid;
  int linear = 0;
  State state = State::Running;
};
constexpr size_t kFiberStack = 256 * 1024;
inline std::vector<Fiber> fibers;
inline Fiber* cur = nullptr;
inline void* scheduler_sp = nullptr;
inline const std::function<void()>* body = nullptr;
inline dim3 block_idx, grid_dim, block_dim;
inline unsigned char* smem_base = nullptr;
inline uint64_t xchg[32][32];       // one slot per lane of each warp, for shuffles
inline uint64_t block_generation = 0;  // counts CTAs: static shared memory is re-poisoned per CTA
inline bool reverse_order() {
  static const bool r = [] { const char* e = std::getenv("SIM_REVERSE"); return e && *e == '1'; }();
  return r;
}

inline void yield() { cudasim_switch(&cur->sp, scheduler_sp); }
inline void syncthreads() {
  cur->state = State::BlockBarrier;
  yield();
}
inline void syncwarp() {
  cur->state = State::WarpBarrier;
  yield();
}
// A preemption point: the other lanes of the CTA run before this one goes on (no barrier semantics).
inline void preempt() { yield(); }
inline int lane() { return cur->linear % 32; }
inline int warp() { return cur->linear / 32; }
inline unsigned char* shared_memory() { return smem_base; }

[[noreturn]] inline void fiber_entry() {
  (*body)();
  cur->state = State::Done;
  cudasim_switch(&cur->sp, scheduler_sp);
  fail("a finished fiber was resumed");
}

inline void start_fiber(Fiber& f) {
  // The frame cudasim_switch pops: control words, r15 .. rbp, then the return address fiber_entry. The
  // stack pointer at fiber_entry is 8 (mod 16), as after a call.
  uint64_t* sp = reinterpret_cast<uint64_t*>(f.stack_top - 72);
  uint32_t ctl[2];
  asm volatile("stmxcsr %0" : "=m"(ctl[0]));
  asm volatile("fnstcw %0" : "=m"(ctl[1]));
  std::memcpy(sp, ctl, 8);
  for (int i = 1; i <= 6; ++i) sp[i] = 0;
  sp[7] = reinterpret_cast<uint64_t>(&fiber_entry);
  f.sp = sp;
}

inline void make_fibers(int threads) {
  if (static_cast<int>(fibers.size()) >= threads) return;
  const size_t old = fibers.size();
  fibers.resize(threads);
  for (size_t i = old; i < fibers.size(); ++i) {
    // A PROT_NONE page below each stack: a fiber that overflows its 256 KiB faults at once.
    char* base = static_cast<char*>(mmap(nullptr, kFiberStack + page_size(), PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base == MAP_FAILED) fail("mmap of a fiber stack failed");
    mprotect(base, page_size(), PROT_NONE);
    fibers[i].stack_top = base + page_size() + kFiberStack;
  }
}

// Releases warp w if every live lane of it waits at a warp barrier (shuffle or __syncwarp).
inline bool release_warp(int w, int threads) {
  const int lanes = std::min(32, threads - w * 32);
  int waiting = 0, live = 0;
  for (int l = 0; l < lanes; ++l) {
    const State s = fibers[w * 32 + l].state;
    live += s != State::Done;
    waiting += s == State::WarpBarrier;
  }
  if (waiting == 0 || waiting != live) return false;
  if (live != lanes) fail("__syncwarp / shuffle with exited lanes in the warp (full mask)");
  for (int l = 0; l < lanes; ++l) fibers[w * 32 + l].state = State::Running;
  return true;
}

// The schedule: rounds over the warps (last to first with SIM_REVERSE=1), each running its lanes (likewise
// ordered) up to their next barrier. By default a warp barrier is released only after the round, so the
// warps of a CTA move in step; with SIM_WARP_AHEAD=1 a warp goes on through its warp barriers at once and runs
// ahead of the others up to the next __syncthreads (a warp that overwrites shared memory the other warps
// have not read yet shows a missing __syncthreads that the lock-step schedule hides).
inline bool warp_ahead() {
  static const bool r = [] { const char* e = std::getenv("SIM_WARP_AHEAD"); return e && *e == '1'; }();
  return r;
}

inline void run_block(dim3 block) {
  const int threads = static_cast<int>(block.x * block.y * block.z);
  const int warps = (threads + 31) / 32;
  make_fibers(threads);
  for (int t = 0; t < threads; ++t) {
    Fiber& f = fibers[t];
    f.linear = t;
    f.tid = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
    f.state = State::Running;
    start_fiber(f);
  }
  const bool rev = reverse_order();
  for (;;) {
    for (int wi = 0; wi < warps; ++wi) {
      const int w = rev ? warps - 1 - wi : wi;
      const int lanes = std::min(32, threads - w * 32);
      do {
        for (int li = 0; li < lanes; ++li) {
          Fiber& f = fibers[w * 32 + (rev ? lanes - 1 - li : li)];
          if (f.state != State::Running) continue;
          cur = &f;
          cudasim_switch(&scheduler_sp, f.sp);
        }
      } while (warp_ahead() && release_warp(w, threads));
    }
    cur = nullptr;
    int done = 0, at_block = 0, running = 0;
    for (int t = 0; t < threads; ++t) {
      const State s = fibers[t].state;
      done += s == State::Done;
      at_block += s == State::BlockBarrier;
      running += s == State::Running;
    }
    if (done == threads) return;
    if (running > 0) continue;  // lanes that stopped at a preemption point go on
    bool released = false;
    for (int w = 0; w < warps; ++w) released = release_warp(w, threads) || released;
    if (released) continue;
    if (at_block > 0 && at_block + done == threads) {
      if (done > 0) fail("__syncthreads reached by some threads after others exited (divergent exit)");
      for (int t = 0; t < threads; ++t) fibers[t].state = State::Running;
      continue;
    }
    fail("deadlock: threads wait at different barriers (__syncthreads in one warp, __syncwarp/shuffle in another)");
  }
}

// ---- static __shared__ variables ----------------------------------------------------------------------------
// build_backend.sh turns `__shared__ T name[N];` into `auto& name = ::sim::static_shared<T[N], ID, ALIGN>();`.
// Each (type, ID) gets its own guarded buffer, NaN-poisoned (0xFF bytes) by the first thread of each CTA that
// reaches the declaration: every thread of a CTA sees the same object, nothing carries over between CTAs.
template <typename T, int ID, size_t Align = alignof(T)>
T& static_shared() {
  static T* p = static_cast<T*>(guarded_alloc(sizeof(T), Align < 4 ? 4 : Align));
  static uint64_t generation = ~uint64_t(0);
  if (generation != block_generation) {
    std::memset(static_cast<void*>(p), 0xFF, sizeof(T));
    generation = block_generation;
  }
  return *p;
}

// ---- kernel launches -----------------------------------------------------------------------------------------
inline std::map<const void*, int>& max_dynamic_smem() {  // cudaFuncSetAttribute(MaxDynamicSharedMemorySize)
  static std::map<const void*, int> m;
  return m;
}
constexpr int kDefaultDynamicSmem = 48 * 1024;  // without the attribute, as on every GPU since Volta
// The opt-in maximum of dynamic shared memory per block: H100's 227 KB, or SIM_OPTIN_SMEM bytes (e.g. 101376
// for an sm_86 / sm_89 GPU, 166912 for an A100).
inline int optin_smem() {
  static const int v = [] {
    const char* e = std::getenv("SIM_OPTIN_SMEM");
    return e && *e ? std::atoi(e) : 227 * 1024;
  }();
  return v;
}

// Runs `kernel` (a lambda calling the kernel function) for every CTA of `grid`. A configuration the hardware
// refuses sets the last error, as a failed launch does, and runs nothing.
inline void launch_impl(const void* fn, dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()>& kernel) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
      grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    error(cudaErrorInvalidConfiguration);
    return;
  }
  int limit = kDefaultDynamicSmem;
  if (fn) {
    auto it = max_dynamic_smem().find(fn);
    if (it != max_dynamic_smem().end()) limit = it->second;
  }
  if (smem_bytes > static_cast<size_t>(limit)) {
    error(cudaErrorInvalidValue);
    return;
  }
  grid_dim = grid, block_dim = block;
  body = &kernel;
  static std::map<size_t, void*> regions;  // dynamic shared memory, one guarded region per size
  void* region = nullptr;
  if (smem_bytes > 0) {
    void*& r = regions[smem_bytes];
    if (!r) r = guarded_alloc(smem_bytes, 128);
    region = r;
  }
  const auto run = [&](unsigned x, unsigned y, unsigned z) {
    block_idx = dim3(x, y, z);
    ++block_generation;
    smem_base = static_cast<unsigned char*>(region);
    if (smem_bytes > 0) std::memset(smem_base, 0xFF, smem_bytes);  // NaN
    run_block(block);
  };
  // SIM_REVERSE=1 also runs the CTAs last to first.
  for (unsigned zz = 0; zz < grid.z; ++zz)
    for (unsigned yy = 0; yy < grid.y; ++yy)
      for (unsigned xx = 0; xx < grid.x; ++xx) {
        if (reverse_order()) {
          run(grid.x - 1 - xx, grid.y - 1 - yy, grid.z - 1 - zz);
        } else {
          run(xx, yy, zz);
        }
      }
  body = nullptr;
}

// kernel<<<grid, block[, smem[, stream]]>>>(args) becomes launch(fn, grid, block, [smem, [stream,]] lambda).
template <typename F>
void launch(const void* fn, dim3 grid, dim3 block, F&& kernel) {
  launch_impl(fn, grid, block, 0, std::function<void()>(kernel));
}
template <typename F>
void launch(const void* fn, dim3 grid, dim3 block, size_t smem, F&& kernel) {
  launch_impl(fn, grid, block, smem, std::function<void()>(kernel));
}
template <typename F>
void launch(const void* fn, dim3 grid, dim3 block, size_t smem, void* stream, F&& kernel) {
  if (stream != nullptr) fail("only the legacy default stream (0) is emulated");
  launch_impl(fn, grid, block, smem, std::function<void()>(kernel));
}

}  // namespace sim

#define threadIdx (::sim::cur->tid)
#define blockIdx (::sim::block_idx)
#define gridDim (::sim::grid_dim)
#define blockDim (::sim::block_dim)
constexpr int warpSize = 32;

// ---- device functions ---------------------------------------------------------------------------------------
inline void __syncthreads() { sim::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) sim::fail("__syncwarp with a partial mask is not emulated");
  sim::syncwarp();
}

namespace sim {
// Lane `lane()` publishes v, the warp meets, each lane reads the slot of src(lane), the warp meets again (so
// the slots may be reused by the next shuffle).
template <typename T, typename Src>
T shuffle(unsigned mask, T v, Src src) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  if (mask != 0xffffffffu) fail("shuffles with a partial mask are not emulated");
  const int w = warp(), l = lane();
  std::memcpy(&xchg[w][l], &v, sizeof(T));
  syncwarp();
  const int s = src(l);
  T r;
  std::memcpy(&r, &xchg[w][s], sizeof(T));
  syncwarp();
  return r;
}
inline void check_width(int width) {
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) fail("shuffle width must be a power of 2 up to 32");
}
}  // namespace sim

// The overloads CUDA declares (int, unsigned, long, unsigned long, long long, unsigned long long, float, double;
// the 16-bit types below), so an argument of another type converts exactly as with nvcc.
#define CUDASIM_SHUFFLES(T)                                                                                  \
  inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {                              \
    sim::check_width(width);                                                                                 \
    return sim::shuffle(mask, v, [&](int l) { const int s = l ^ lane_mask; return s / width == l / width ? s : l; }); \
  }                                                                                                          \
  inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {                            \
    sim::check_width(width);                                                                                 \
    return sim::shuffle(mask, v, [&](int l) { return (l % width) + int(delta) < width ? l + int(delta) : l; }); \
  }                                                                                                          \
  inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {                              \
    sim::check_width(width);                                                                                 \
    return sim::shuffle(mask, v, [&](int l) { return (l % width) >= int(delta) ? l - int(delta) : l; });   \
  }                                                                                                          \
  inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {                                   \
    sim::check_width(width);                                                                                 \
    return sim::shuffle(mask, v, [&](int l) { return (l / width) * width + ((src_lane % width + width) % width); }); \
  }
CUDASIM_SHUFFLES(int)
CUDASIM_SHUFFLES(unsigned int)
CUDASIM_SHUFFLES(long)
CUDASIM_SHUFFLES(unsigned long)
CUDASIM_SHUFFLES(long long)
CUDASIM_SHUFFLES(unsigned long long)
CUDASIM_SHUFFLES(float)
CUDASIM_SHUFFLES(double)

template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

// Atomics: one OS thread runs every fiber, so a plain read-modify-write is atomic. atomicCAS first lets the
// other lanes of the CTA run (a preemption point), so a compare-and-swap loop sees its word change under it
// and must retry, as it would on a GPU. The overloads are CUDA's.
#define CUDASIM_ATOMIC_ADD(T)             \
  inline T atomicAdd(T* p, T v) {         \
    const T old = *p;                     \
    *p = old + v;                         \
    return old;                           \
  }
CUDASIM_ATOMIC_ADD(int)
CUDASIM_ATOMIC_ADD(unsigned int)
CUDASIM_ATOMIC_ADD(unsigned long long)
CUDASIM_ATOMIC_ADD(float)
CUDASIM_ATOMIC_ADD(double)
#define CUDASIM_ATOMIC_CAS(T)                       \
  inline T atomicCAS(T* p, T compare, T v) {        \
    sim::preempt();                                 \
    const T old = *p;                               \
    if (old == compare) *p = v;                     \
    return old;                                     \
  }                                                 \
  inline T atomicExch(T* p, T v) {                  \
    const T old = *p;                               \
    *p = v;                                         \
    return old;                                     \
  }
CUDASIM_ATOMIC_CAS(int)
CUDASIM_ATOMIC_CAS(unsigned int)
CUDASIM_ATOMIC_CAS(unsigned long long)
#define CUDASIM_ATOMIC_MINMAX(T)                                   \
  inline T atomicMax(T* p, T v) {                                  \
    const T old = *p;                                              \
    if (v > old) *p = v;                                           \
    return old;                                                    \
  }                                                                \
  inline T atomicMin(T* p, T v) {                                  \
    const T old = *p;                                              \
    if (v < old) *p = v;                                           \
    return old;                                                    \
  }
CUDASIM_ATOMIC_MINMAX(int)
CUDASIM_ATOMIC_MINMAX(unsigned int)
CUDASIM_ATOMIC_MINMAX(long long)
CUDASIM_ATOMIC_MINMAX(unsigned long long)

[[noreturn]] inline void __trap() { sim::fail("__trap"); }

// Integer and rounding intrinsics. The *_rn ones round each operation on its own: the empty asm keeps the
// compiler from contracting them into a fused multiply-add (nvcc does not contract them either).
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((uint64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __mulhi(int a, int b) { return static_cast<int>((int64_t(a) * b) >> 32); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
#define CUDASIM_RN(name, T, op)  \
  inline T name(T a, T b) {      \
    T r = a op b;                \
    asm volatile("" : "+x"(r));  \
    return r;                    \
  }
CUDASIM_RN(__dmul_rn, double, *)
CUDASIM_RN(__dadd_rn, double, +)
CUDASIM_RN(__dsub_rn, double, -)
CUDASIM_RN(__ddiv_rn, double, /)
CUDASIM_RN(__fmul_rn, float, *)
CUDASIM_RN(__fadd_rn, float, +)
CUDASIM_RN(__fsub_rn, float, -)
CUDASIM_RN(__fdiv_rn, float, /)
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __fmaf_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
// The fast-math intrinsics: the accurate functions here (the GPU's are approximations within a few ulp).
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x != x ? 0.f : (x < 0.f ? 0.f : (x > 1.f ? 1.f : x)); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }

// min / max, as CUDA's math headers declare them for device code (same-type overloads).
#define CUDASIM_MINMAX(T)                            \
  inline T min(T a, T b) { return a < b ? a : b; }   \
  inline T max(T a, T b) { return a > b ? a : b; }
CUDASIM_MINMAX(int)
CUDASIM_MINMAX(unsigned int)
CUDASIM_MINMAX(long)
CUDASIM_MINMAX(unsigned long)
CUDASIM_MINMAX(long long)
CUDASIM_MINMAX(unsigned long long)
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

// ---- 16-bit types ------------------------------------------------------------------------------------------
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
CUDASIM_SHUFFLES(__nv_bfloat16)
CUDASIM_SHUFFLES(__half)
namespace sim {
inline float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
inline float to_f(__half x) { return __half2float(x); }
inline float to_f(float x) { return x; }
}  // namespace sim

// ---- the runtime API, on host memory -------------------------------------------------------------------
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st {
  bool recorded = false;
};
using cudaEvent_t = CUevent_st*;
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = sim::last_error();
  sim::last_error() = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return sim::last_error(); }
inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

inline cudaError_t cudaGetDeviceCount(int* n) {
  if (!n) return sim::error(cudaErrorInvalidValue);
  *n = 0;
  if (sim::device_count() <= 0) return sim::error(cudaErrorNoDevice);
  *n = sim::device_count();
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  if (sim::device_count() <= 0) return sim::error(cudaErrorNoDevice);
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) {
  if (sim::device_count() <= 0) return sim::error(cudaErrorNoDevice);
  if (d < 0 || d >= sim::device_count()) return sim::error(cudaErrorInvalidDevice);
  if (d != 0) sim::fail("cudaSetDevice: only device 0 is emulated");
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int device) {
  if (device < 0 || device >= sim::device_count()) return sim::error(cudaErrorInvalidDevice);
  switch (a) {  // an H100 SXM
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = sim::kDefaultDynamicSmem; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = sim::optin_smem(); break;
    default: return sim::error(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
inline cudaError_t cudaFuncSetAttribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (!fn) return sim::error(cudaErrorInvalidDeviceFunction);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return sim::error(cudaErrorInvalidValue);
  if (value < 0 || value > sim::optin_smem()) return sim::error(cudaErrorInvalidValue);
  sim::max_dynamic_smem()[fn] = value;
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaFuncSetAttribute(T* fn, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(fn), attr, value);
}

inline cudaError_t cudaMalloc(void** p, size_t n) {
  if (!p) return sim::error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  *p = nullptr;
  if (n == 0) return cudaSuccess;  // the runtime gives a null pointer for 0 bytes
  if (n > sim::device_capacity() - sim::device_bytes_used()) return sim::error(cudaErrorMemoryAllocation);
  sim::Mapping m;
  void* q = sim::guarded_alloc(n, 16, &m);
  std::memset(q, 0xFF, n);  // never-written device memory reads as NaN (a GPU gives no zeros either)
  sim::allocations()[reinterpret_cast<uintptr_t>(q)] = {n, m};
  sim::device_bytes_used() += n;
  *p = q;
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaMalloc(T** p, size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  auto it = sim::allocations().find(reinterpret_cast<uintptr_t>(p));
  if (it == sim::allocations().end()) return sim::error(cudaErrorInvalidValue);  // not from cudaMalloc, or freed twice
  munmap(it->second.mapping.base, it->second.mapping.length);
  sim::device_bytes_used() -= it->second.bytes;
  sim::allocations().erase(it);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *total = sim::device_capacity();
  *free_bytes = sim::device_capacity() - sim::device_bytes_used();
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t n) {
  if (!p) return sim::error(cudaErrorInvalidValue);
  *p = std::aligned_alloc(4096, (n + 4095) / 4096 * 4096 + 4096);
  if (!*p) return sim::error(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  sim::pinned().insert(*p);
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaMallocHost(T** p, size_t n) {
  return cudaMallocHost(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  if (!sim::pinned().erase(p)) return sim::error(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p) {
  if (!a) return sim::error(cudaErrorInvalidValue);
  *a = cudaPointerAttributes{cudaMemoryTypeUnregistered, -2, nullptr, nullptr};
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  if (sim::is_device(p)) {
    *a = cudaPointerAttributes{cudaMemoryTypeDevice, 0, const_cast<void*>(p), nullptr};
  } else if (sim::pinned().count(const_cast<void*>(p))) {
    *a = cudaPointerAttributes{cudaMemoryTypeHost, 0, const_cast<void*>(p), const_cast<void*>(p)};
  }
  return cudaSuccess;
}

namespace sim {
// A copy's device side must lie inside one device allocation, its host side outside every one (a device
// pointer passed as a host pointer, or the reverse, is an error the runtime reports as an invalid value).
inline cudaError_t check_copy(void* d, const void* s, size_t n, cudaMemcpyKind k) {
  if (n == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(api_mutex());
  const bool dst_dev = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
  const bool src_dev = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
  if (k == cudaMemcpyDefault) return cudaSuccess;
  if (dst_dev ? !find_allocation(d, n) : is_device(d)) return error(cudaErrorInvalidValue);
  if (src_dev ? !find_allocation(s, n) : is_device(s)) return error(cudaErrorInvalidValue);
  return cudaSuccess;
}
// Host waits: the calls after which, on a real GPU, the host thread waits for the device to finish the work
// queued before them (legacy default stream). The emulator finishes everything at once, so nothing waits here;
// the counts say how often a real GPU would drain its queue (scripts/cudasim/sync_count_test.cpp).
//   memcpy_h2d  cudaMemcpy from host memory (the runtime syncs the stream before a pageable upload)
//   memcpy_d2h  cudaMemcpy to host memory (returns when the bytes are there)
//   memcpy_d2d  cudaMemcpy between device buffers (synchronous with respect to the host for the non-Async call)
//   memset      cudaMemset (the non-Async call)
//   device_sync, stream_sync, event_sync  the explicit waits
struct HostWaits {
  std::atomic<int64_t> memcpy_h2d{0}, memcpy_d2h{0}, memcpy_d2d{0}, memset{0}, device_sync{0}, stream_sync{0},
      event_sync{0};
};
inline HostWaits& host_waits() {
  static HostWaits w;
  return w;
}
inline cudaError_t copy_now(void* d, const void* s, size_t n, cudaMemcpyKind k) {
  if (cudaError_t e = check_copy(d, s, n, k); e != cudaSuccess) return e;
  if (n) std::memmove(d, s, n);
  return cudaSuccess;
}
}  // namespace sim
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind k) {
  static const bool trace = [] { const char* e = std::getenv("SIM_TRACE_WAITS"); return e && *e == '1'; }();
  if (trace) {  // the call and its callers as offsets into the binary, for addr2line -f -C -e test_sim
    void* frames[8];
    const int depth = backtrace(frames, 8);
    std::fprintf(stderr, "[sim wait] cudaMemcpy kind %d, %zu bytes, callers", int(k), n);
    for (int i = 1; i < depth; ++i) {
      Dl_info info;
      if (dladdr(frames[i], &info) && info.dli_fbase) {
        std::fprintf(stderr, " %#lx", static_cast<unsigned long>(static_cast<char*>(frames[i]) - static_cast<char*>(info.dli_fbase)));
      }
    }
    std::fprintf(stderr, "\n");
  }
  sim::HostWaits& w = sim::host_waits();
  if (k == cudaMemcpyHostToDevice) ++w.memcpy_h2d;
  if (k == cudaMemcpyDeviceToHost) ++w.memcpy_d2h;
  if (k == cudaMemcpyDeviceToDevice) ++w.memcpy_d2d;
  return sim::copy_now(d, s, n, k);
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t stream = nullptr) {
  if (stream != nullptr) sim::fail("only the legacy default stream (0) is emulated");
  return sim::copy_now(d, s, n, k);
}
namespace sim {
inline cudaError_t memset_now(void* d, int v, size_t n) {
  if (n == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(api_mutex());
    if (!find_allocation(d, n)) return error(cudaErrorInvalidValue);
  }
  std::memset(d, v, n);
  return cudaSuccess;
}
}  // namespace sim
inline cudaError_t cudaMemset(void* d, int v, size_t n) {
  ++sim::host_waits().memset;
  return sim::memset_now(d, v, n);
}
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t stream = nullptr) {
  if (stream != nullptr) sim::fail("only the legacy default stream (0) is emulated");
  return sim::memset_now(d, v, n);
}
inline cudaError_t cudaDeviceSynchronize() {  // every launch and copy has finished already
  ++sim::host_waits().device_sync;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream != nullptr) sim::fail("only the legacy default stream (0) is emulated");
  ++sim::host_waits().stream_sync;
  return cudaSuccess;
}

namespace sim {
inline std::set<cudaEvent_t>& events() {
  static std::set<cudaEvent_t> s;
  return s;
}
inline bool live_event(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(api_mutex());
  return events().count(e) > 0;
}
}  // namespace sim
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) {
  if (!e || (flags & ~0x07u) != 0) return sim::error(cudaErrorInvalidValue);
  *e = new CUevent_st();
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  sim::events().insert(*e);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream = nullptr) {
  if (stream != nullptr) sim::fail("only the legacy default stream (0) is emulated");
  if (!sim::live_event(e)) return sim::error(cudaErrorInvalidResourceHandle);
  e->recorded = true;
  return cudaSuccess;
}
// Everything has finished when a call returns, so every recorded event is complete; an event never recorded
// counts as complete too (the runtime's rule).
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!sim::live_event(e)) return sim::error(cudaErrorInvalidResourceHandle);
  ++sim::host_waits().event_sync;
  return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t e) {  // never waits
  if (!sim::live_event(e)) return sim::error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(sim::api_mutex());
  if (!sim::events().erase(e)) return sim::error(cudaErrorInvalidResourceHandle);
  delete e;
  return cudaSuccess;
}
