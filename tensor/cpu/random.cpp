// CpuBackend, part 7: random numbers from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC'11), the counter-based generator also used by cuRAND and PyTorch's CUDA generator.
//
// A block is a pure function of (key, counter): 10 rounds of two 32x32->64-bit multiplies and xors. So
// element i of a fill just computes block (state.offset + i), in any order, on any thread: the result is
// bit-identical for every thread count (and the CUDA backend can reproduce it).
//
// How one 128-bit block (words x0..x3) becomes one element (the CUDA backend must do exactly the same):
//   Uniform   float32:      u = (x0 >> 8) * 2^-24                      in [0, 1), 24 bits
//             other dtypes: u = ((x1:x0) >> 11) * 2^-53               in [0, 1), 53 bits (x1 the high word)
//             value = fma(b - a, u, a) in double (one rounding), then converted to out's dtype
//   Normal    u1 = (((x1:x0) >> 11) + 1) * 2^-53 in (0, 1] (never 0, so log(u1) is finite),
//             u2 = ((x3:x2) >> 11) * 2^-53 in [0, 1),
//             value = a + b * sqrt(-2 log u1) * cos(2 pi u2)          (Box-Muller, one of the pair), in double
//   Bernoulli u as for Uniform float64 (53 bits, every dtype); value = u < a ? 1 : 0 in out's dtype
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/strided_loop.h"
#include "tensor/op_profile.h"
#include "tensor/random.h"

namespace glance {

PhiloxBlock philox4x32_10(uint64_t seed, uint64_t counter) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3) - 1)
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key is bumped between rounds
      k0 += W0;
      k1 += W1;
    }
    const uint64_t p0 = uint64_t(M0) * c0, p1 = uint64_t(M1) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0), hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

namespace {

constexpr double kTwoPi = 6.283185307179586;

inline double uniform24(uint32_t x) { return double(x >> 8) * 0x1.0p-24; }
inline uint64_t bits53(uint32_t lo, uint32_t hi) { return ((uint64_t(hi) << 32) | lo) >> 11; }
inline double uniform53(uint32_t lo, uint32_t hi) { return double(bits53(lo, hi)) * 0x1.0p-53; }

template <typename T>
inline T to_dtype(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
void fill_random(RandomKind kind, T* out, int64_t n, double a, double b, PhiloxState state) {
#pragma omp parallel for schedule(static) if (n >= 4096)
  for (int64_t i = 0; i < n; ++i) {
    const PhiloxBlock r = philox4x32_10(state.seed, state.offset + uint64_t(i));
    double v = 0;
    switch (kind) {
      case RandomKind::Uniform: {
        const double u = std::is_same_v<T, float> ? uniform24(r.x[0]) : uniform53(r.x[0], r.x[1]);
        // An explicit fma: `a + (b - a) * u` would round once or twice depending on whether the compiler
        // contracts it (GCC does with -march=native on an FMA machine, not in a portable build), and the
        // CUDA backend must produce the same bits (cuda/random.cu).
        v = std::fma(b - a, u, a);
        break;
      }
      case RandomKind::Normal: {
        const double u1 = double(bits53(r.x[0], r.x[1]) + 1) * 0x1.0p-53;
        const double u2 = uniform53(r.x[2], r.x[3]);
        v = a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
        break;
      }
      case RandomKind::Bernoulli:
        v = uniform53(r.x[0], r.x[1]) < a ? 1.0 : 0.0;
        break;
    }
    out[i] = to_dtype<T>(v);
  }
}

}  // namespace

void CpuBackend::random(RandomKind kind, const Tensor& out, double a, double b, PhiloxState state) {
  const op_profile::Scope profile_scope(OpKind::Random);
  if (!out.is_contiguous()) throw std::invalid_argument("cpu random: out must be contiguous");
  GLANCE_DISPATCH(out.dtype(), T, { fill_random<T>(kind, out.data<T>(), out.numel(), a, b, state); });
}

}  // namespace glance
