// CudaBackend, part 9: random fills from Philox4x32-10, the same numbers as the CPU backend.
//
// Philox is counter-based: element i of a fill is a pure function of (seed, offset + i) (tensor/random.h), so
// a GPU thread computes its element's 128-bit block directly, with no state shared between threads. The
// round function and the block -> value recipes below are line-for-line those of tensor/cpu/random.cpp:
//
//   Uniform   float32:      u = (x0 >> 8) * 2^-24                 other dtypes: u = ((x1:x0) >> 11) * 2^-53
//             value = fma(b - a, u, a) in double (one rounding), then converted to out's dtype
//   Normal    u1 = (((x1:x0) >> 11) + 1) * 2^-53 in (0, 1], u2 = ((x3:x2) >> 11) * 2^-53,
//             value = a + b * sqrt(-2 log u1) * cos(2 pi u2)     (Box-Muller, one of the pair), in double
//   Bernoulli value = uniform53 < a ? 1 : 0
//
// Bit-for-bit agreement with the CPU: the integer part (Philox, the bit slicing) is exact. a + (b - a) * u is
// written as an explicit fma on both devices: left to the compilers, GCC contracts it into one fused
// multiply-add on an FMA machine (-march=native; C++ keeps -ffp-contract=fast even with -std=c++20) and rounds
// twice without FMA, and nvcc contracts as it likes, so the numbers would depend on the build. With fma (one
// rounding, exact on both devices) uniform and bernoulli fills are bit-identical. Normal goes through log and
// cos, where CUDA's double versions (within 1 ulp) and glibc's may differ in the last bit: equal to ~1e-15
// relative in float64, almost always identical after rounding to float32.
#include <stdexcept>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_utils.cuh"

namespace glance::cuda {

namespace {

struct Block4 {
  uint32_t x[4];
};

// Philox4x32-10 (Salmon et al., SC'11): 10 rounds of two 32x32 -> 64-bit multiplies and xors, the key bumped
// between rounds. The same code as glance::philox4x32_10 (tensor/cpu/random.cpp).
__device__ __forceinline__ Block4 philox(uint64_t seed, uint64_t counter) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // key increments
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += W0;
      k1 += W1;
    }
    const uint32_t hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
    const uint32_t hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  return Block4{{c0, c1, c2, c3}};
}

__device__ __forceinline__ double uniform24(uint32_t x) { return double(x >> 8) * 0x1.0p-24; }
__device__ __forceinline__ uint64_t bits53(uint32_t lo, uint32_t hi) { return ((uint64_t(hi) << 32) | lo) >> 11; }
__device__ __forceinline__ double uniform53(uint32_t lo, uint32_t hi) { return double(bits53(lo, hi)) * 0x1.0p-53; }

template <typename T>
__global__ void random_kernel(RandomKind kind, T* out, int64_t n, double a, double b, uint64_t seed, uint64_t offset) {
  constexpr double kTwoPi = 6.283185307179586;
  for (int64_t i = global_thread_id(); i < n; i += global_thread_count()) {
    const Block4 r = philox(seed, offset + uint64_t(i));
    double v = 0;
    switch (kind) {
      case RandomKind::Uniform: {
        const double u = std::is_same_v<T, float> ? uniform24(r.x[0]) : uniform53(r.x[0], r.x[1]);
        v = fma(b - a, u, a);  // a + (b - a) * u with one rounding, exactly as the CPU (tensor/cpu/random.cpp)
        break;
      }
      case RandomKind::Normal: {
        const double u1 = double(bits53(r.x[0], r.x[1]) + 1) * 0x1.0p-53;
        const double u2 = uniform53(r.x[2], r.x[3]);
        const double radius = sqrt(__dmul_rn(-2.0, log(u1)));
        v = __dadd_rn(a, __dmul_rn(__dmul_rn(b, radius), cos(__dmul_rn(kTwoPi, u2))));
        break;
      }
      case RandomKind::Bernoulli:
        v = uniform53(r.x[0], r.x[1]) < a ? 1.0 : 0.0;
        break;
    }
    out[i] = convert<T>(v);
  }
}

}  // namespace

void CudaBackend::random(RandomKind kind, const Tensor& out, double a, double b, PhiloxState state) {
  require_cuda(out, "random");
  if (!out.is_contiguous()) throw std::invalid_argument("cuda random: out must be contiguous");
  const int64_t n = out.numel();
  if (n == 0) return;
  GLANCE_DISPATCH(out.dtype(), T, {
    random_kernel<T><<<blocks_for(n), kThreads>>>(kind, static_cast<T*>(out.raw_data()), n, a, b, state.seed,
                                                  state.offset);
    GLANCE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace glance::cuda
