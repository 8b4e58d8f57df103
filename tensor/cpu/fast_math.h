// exp and erf for float32 that the compiler can vectorise.
//
// std::exp and std::erf are calls into libm, one element at a time: profiling an RLT training step
// showed expf (softmax, GELU's backward) and erff (GELU) taking a third of the whole step. These are
// branch-free inline versions, so a loop over them becomes SIMD code (AVX-512: 16 floats at a time).
//
//   fast_exp(x): Cephes' expf. x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so r is exact),
//                e^r by a degree-5 polynomial, 2^n put into the exponent bits. Relative error ~1e-7
//                (about 2 float ulps); exp(x) for x < -87.3 is 0, for x > 88.7 is +inf; NaN stays NaN.
//   fast_erf(x): Abramowitz & Stegun 7.1.26, erf(x) = 1 - (a1 t + ... + a5 t^5) e^{-x^2}, t = 1/(1+p|x|),
//                odd in x. Absolute error 1.5e-7 for the formula; below 5e-7 evaluated in float32 (measured
//                in tests/tensor/test_fast_math.cpp), fine for GELU in float32.
//
// float64 keeps std::exp / std::erf (gradcheck and the float64 references need full precision).
#pragma once
#include <bit>
#include <cstdint>

namespace glance::cpu {

inline float fast_exp(float x) {
  const float clamped = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  // n = round(x / ln2) by the 1.5 * 2^23 trick: adding it pushes the fraction bits out (round to nearest),
  // subtracting it gives the integer back. Plain arithmetic, so it vectorises (floorf would not, as it may
  // set errno).
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = (p * r * r + r) + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  float y = er * two_n;
  y = x < -87.3f ? 0.0f : y;
  y = x > 88.7f ? __builtin_inff() : y;
  return x != x ? x : y;  // NaN in, NaN out
}

inline float fast_erf(float x) {
  const float a = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t + -1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t + -0.284496736f;
  p = p * t + 0.254829592f;
  const float e = 1.0f - p * t * fast_exp(-a * a);
  return x < 0.0f ? -e : e;
}

}  // namespace glance::cpu
