// The random draws of tensor/random.h, on top of the generator and the backend's random fill.
//
// Every draw follows the same three steps:
//   1. allocate the output,
//   2. take `numel` Philox blocks from the generator (gen.advance(numel): one 128-bit block per element),
//   3. let the backend turn block (seed, offset + i) into element i (Backend::random).
// So a draw of n elements moves the generator's offset by exactly n, whatever the kind of draw, and the
// values depend only on (seed, offset), never on threads or devices.
//
// The draws built from those fills here, on the host:
//   trunc_normal  a uniform through the inverse normal CDF (erfinv below), as torch.nn.init.trunc_normal_
//   randint       a uniform 64-bit integer scaled into [low, high) (uniform-then-floor in fixed point)
//   randperm      Fisher-Yates shuffle driven by one Philox block per position
// philox4x32_10 itself and the CPU fill live in tensor/cpu/random.cpp.
#include "tensor/random.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

#include "tensor/ops.h"

namespace glance {

// A function-local static: created, seeded with 0, on first use, so a program that never calls
// manual_seed still gets the same numbers on every run. It is shared by the whole process and not
// locked: threads that draw at the same time must each pass their own Generator.
Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

std::string num(double v) {
  // Shortest readable form of a double for error messages: "0.5", "-1", "1e+30".
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void require_floating(DType dtype, const char* op) {
  if (!is_floating(dtype)) {
    throw std::invalid_argument(std::string(op) + ": expected a floating dtype, got " + dtype_name(dtype));
  }
}

void require_low_below_high(double low, double high, const char* op) {
  if (!(low < high)) {  // also rejects NaN
    throw std::invalid_argument(std::string(op) + ": low must be < high, got low=" + num(low) +
                                " high=" + num(high));
  }
}

void require_positive_std(double std, const char* op) {
  if (!(std > 0.0) || std::isinf(std)) {
    throw std::invalid_argument(std::string(op) + ": std must be > 0 and finite, got " + num(std));
  }
}

// Steps 1-3 above: a fresh CPU tensor filled by the backend. Uniform: [a, b); Normal: mean a, std b;
// Bernoulli: P(1) = a.
Tensor draw(RandomKind kind, const Shape& shape, double a, double b, DType dtype, Generator* gen) {
  Tensor out = ops::empty(shape, dtype);
  PhiloxState start = pick(gen).advance(static_cast<uint64_t>(out.numel()));
  if (out.numel() > 0) backend_for(out.device()).random(kind, out, a, b, start);
  return out;
}

// A uniform 64-bit word from the block of element i: the first two 32-bit words of the block.
uint64_t word64(PhiloxState start, uint64_t i) {
  PhiloxBlock block = philox4x32_10(start.seed, start.offset + i);
  return static_cast<uint64_t>(block.x[0]) | (static_cast<uint64_t>(block.x[1]) << 32);
}

// floor(u * range) for u = word / 2^64 in [0, 1), computed exactly in 128-bit fixed point (Lemire's
// multiply-shift). The result is in [0, range) with a bias of at most range / 2^64, far below anything a
// test could see; a float64 uniform would instead run out of bits past 2^53.
uint64_t scale_below(uint64_t word, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(word) * range) >> 64);
}


// The inverse error function, erf(erfinv(y)) = y for y in (-1, 1); +-inf at +-1, NaN outside.
// A starting point from Giles' single-precision rational approximation ("Approximating the erfinv
// function", GPU Computing Gems, 2011; about 1e-7 relative error over float32's range), then Newton
// steps to double precision. erfinv is odd, so we solve for |y| and restore the sign.
//   |y| <= 0.5: solve erf(x) = y,   f'(x) = 2/sqrt(pi) exp(-x^2).
//   |y| >  0.5: solve log erfc(x) = log(1 - y). 1 - y is exact there, erfc keeps its relative precision
//               where erf(x) - y would cancel to noise, and log erfc(x) ~ -x^2 is nearly straight, so
//               Newton converges fast even from Giles' start far outside its range (5.27 for 5.86 at
//               y = 1 - 1e-16).
double erfinv(double y) {
  if (std::isnan(y) || y < -1.0 || y > 1.0) return std::numeric_limits<double>::quiet_NaN();
  const double sign = y < 0 ? -1.0 : 1.0;
  y = std::fabs(y);
  if (y == 1.0) return sign * std::numeric_limits<double>::infinity();

  double w = -std::log((1.0 - y) * (1.0 + y));
  double p;
  if (w < 5.0) {  // central region, |y| < ~0.9966
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {  // tails
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double x = p * y;

  const double two_over_sqrt_pi = 2.0 / std::sqrt(std::numbers::pi);
  for (int step = 0; step < 8; ++step) {
    double delta;
    if (y <= 0.5) {
      delta = (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
    } else {
      double tail = std::erfc(x);
      delta = (std::log(tail) - std::log1p(-y)) / (-two_over_sqrt_pi * std::exp(-x * x) / tail);
    }
    x -= delta;
    if (std::fabs(delta) <= 1e-15 * std::fabs(x)) break;  // converged (usually after two steps)
  }
  return sign * x;
}

}  // namespace

namespace ops {

Tensor rand(const Shape& shape, DType dtype, Generator* gen) { return uniform(shape, 0.0, 1.0, dtype, gen); }

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  require_floating(dtype, "uniform");
  require_low_below_high(low, high, "uniform");
  return draw(RandomKind::Uniform, shape, low, high, dtype, gen);
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen) { return normal(shape, 0.0, 1.0, dtype, gen); }

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* gen) {
  require_floating(dtype, "normal");
  require_positive_std(std, "normal");
  return draw(RandomKind::Normal, shape, mean, std, dtype, gen);
}

// PyTorch's trunc_normal_: with a = (low - mean) / std and b = (high - mean) / std in standard units,
//   v ~ Uniform[2 Phi(a) - 1, 2 Phi(b) - 1]        (so (v + 1) / 2 is uniform over [Phi(a), Phi(b)])
//   x = mean + std * sqrt(2) * erfinv(v)            (the inverse CDF of N(mean, std))
//   x = clamp(x, low, high)                         (guards the last bit of rounding)
// Exact in distribution, one uniform per element. It loses precision when [low, high] lies far in one
// tail (Phi(a) and Phi(b) both round to 1); the clamp still keeps every value inside the bounds.
Tensor trunc_normal(const Shape& shape, double mean, double std, double low, double high, DType dtype,
                    Generator* gen) {
  require_floating(dtype, "trunc_normal");
  require_positive_std(std, "trunc_normal");
  require_low_below_high(low, high, "trunc_normal");
  // 2 Phi(z) - 1 = erf(z / sqrt 2), computed directly to skip a rounding step.
  double v_low = std::erf((low - mean) / std / std::numbers::sqrt2);
  double v_high = std::erf((high - mean) / std / std::numbers::sqrt2);

  // Draw in float64 whatever the output dtype, so the transform keeps its precision.
  Tensor v = draw(RandomKind::Uniform, shape, 0.0, 1.0, DType::Float64, gen);
  double* p = v.data<double>();
  for (int64_t i = 0; i < v.numel(); ++i) {
    double u = v_low + (v_high - v_low) * p[i];
    double x = mean + std * std::numbers::sqrt2 * erfinv(u);
    p[i] = std::fmin(std::fmax(x, low), high);
  }
  return to_dtype(v, dtype);
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* gen) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("bernoulli: p must be in [0, 1], got " + num(p));
  }
  // The backend compares the same 53-bit uniform with p for every dtype, so a seed gives the same mask
  // whether it is drawn as float32 (dropout), bool or int64.
  return draw(RandomKind::Bernoulli, shape, p, 0.0, dtype, gen);
}

// Element i = low + floor(u_i * (high - low)) with u_i the 64-bit word of block (seed, offset + i) read as
// a fraction of 2^64. Exact for every int64 range, including [INT64_MIN, INT64_MAX).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen) {
  if (low >= high) {
    throw std::invalid_argument("randint: low must be < high, got low=" + std::to_string(low) +
                                " high=" + std::to_string(high));
  }
  Tensor out = empty(shape, DType::Int64);
  const uint64_t n = static_cast<uint64_t>(out.numel());
  PhiloxState start = pick(gen).advance(n);
  // Unsigned arithmetic: high - low and low + k wrap correctly even across the whole int64 range.
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  int64_t* values = out.data<int64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    values[i] = static_cast<int64_t>(static_cast<uint64_t>(low) + scale_below(word64(start, i), range));
  }
  return out;
}

// Fisher-Yates (Durstenfeld's in-place form): for i = n-1 down to 1, swap position i with a uniformly
// chosen j in [0, i]. Each of the n! orders comes out equally likely. Position i uses block
// (seed, offset + i); n blocks are taken, so the generator moves by n like any draw of n elements.
Tensor randperm(int64_t n, Generator* gen) {
  if (n < 0) throw std::invalid_argument("randperm: n must be >= 0, got " + std::to_string(n));
  Tensor out = empty({n}, DType::Int64);
  PhiloxState start = pick(gen).advance(static_cast<uint64_t>(n));
  int64_t* perm = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(scale_below(word64(start, static_cast<uint64_t>(i)), static_cast<uint64_t>(i) + 1));
    std::swap(perm[i], perm[j]);
  }
  return out;
}

}  // namespace ops
}  // namespace glance
