// The fused CUDA attention kernels (cuda/attention/, rungs 3-6 of docs/09) against the CPU rungs:
//   - rung 3 (fp32 forward): out and logsumexp vs a float64 loop, on the ragged pack 1/7/64/197/1568 and
//     on lengths around the tile sizes (0, 1, 31..33, 63..65, 127, 129), head dims 32, 64, 128;
//   - rung 4 (fp32 backward): dq, dk, dv vs the plain reference (nn::reference_attention) in float64; the
//     deterministic dQ path vs the atomic one, and run twice for the same bits;
//   - rung 5 (variable length): the pack equals each clip run on its own, bit for bit;
//   - rung 6 (bf16 / fp16 on tensor cores): forward and backward vs float64 on the rounded inputs, within
//     stated bounds;
//   - the host API's errors, and the kernel "fused" on glance tensors through the CUDA Backend (with autograd).
// Every output and gradient buffer is poisoned (0xFF bytes: NaN in fp32, bf16 and fp16) before each run,
// so an element a kernel forgets to write fails the comparison. Buffers are raw cudaMalloc memory: the
// kernels take device pointers and need no Backend.
//
// Every test skips where no GPU is present. On a GPU machine:
//   ./build/tests/test_cuda --gtest_filter='FusedAttention*'
//   GLANCE_CUDA_DEBUG=1 ./build/tests/test_cuda ...   (sync + check after every kernel, cu_seqlens checked)
//   compute-sanitizer ./build/tests/test_cuda --gtest_filter='FusedAttentionCuda.ForwardFp32*'
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "cuda/attention/fused_attention.h"
#include "cuda/device_query.h"
#include "nn/attention/kernel.h"
#include "nn/attention_testing.h"
#include "nn/token_layout.h"
#include "tensor/backend.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
namespace fa = glance::cuda::attention;

// ---- small helpers: device buffers, packs, random data ---------------------------------------------

void cuda_ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr_), std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    cuda_ok(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  std::vector<T> download() const {
    cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize (a kernel failed)");
    std::vector<T> host(n_);
    cuda_ok(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    return host;
  }
  // 0xFF bytes: NaN in fp32, bf16 and fp16, so unwritten elements fail every comparison.
  void poison() { cuda_ok(cudaMemset(ptr_, 0xFF, n_ * sizeof(T)), "cudaMemset"); }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// Clips of the given lengths packed back to back, with their cu_seqlens on the device.
struct Pack {
  std::vector<int64_t> counts;
  std::vector<int32_t> cu{0};
  int64_t total = 0;
  int max_len = 0;
  DeviceBuffer<int32_t> cu_device;

  explicit Pack(std::vector<int64_t> lengths) : counts(std::move(lengths)), cu_device(counts.size() + 1) {
    for (int64_t n : counts) {
      total += n;
      cu.push_back(static_cast<int32_t>(total));
      max_len = std::max(max_len, static_cast<int>(n));
    }
    cu_device.upload(cu);
  }
  fa::Problem problem(int heads, int d, float scale) const {
    fa::Problem p;
    p.heads = heads, p.total_tokens = total, p.head_dim = d, p.batch = static_cast<int>(counts.size());
    p.max_len = max_len, p.cu_seqlens = cu_device.get(), p.scale = scale;
    return p;
  }
  std::string str() const {
    std::string s;
    for (int64_t n : counts) s += (s.empty() ? "" : "/") + std::to_string(n);
    return s;
  }
};

std::vector<float> random_normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(n);
  for (float& e : x) e = normal(rng);
  return x;
}

std::vector<double> to_doubles(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

// ---- float64 references ------------------------------------------------------------------------------

struct Forward64 {
  std::vector<double> out, lse;
};

// softmax(q k^T * scale) v inside each clip, and each row's logsumexp, in float64 (q, k, v: [H, N, d]).
Forward64 reference_forward(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                            const Pack& pack, int H, int d, double scale) {
  const int64_t N = pack.total;
  Forward64 r{std::vector<double>(static_cast<size_t>(H * N * d)), std::vector<double>(static_cast<size_t>(H * N))};
  std::vector<double> s;
  for (int h = 0; h < H; ++h)
    for (size_t b = 0; b + 1 < pack.cu.size(); ++b) {
      const int64_t begin = pack.cu[b], L = pack.cu[b + 1] - pack.cu[b];
      s.resize(static_cast<size_t>(L));
      for (int64_t i = begin; i < begin + L; ++i) {
        const double* qi = &q[(h * N + i) * d];
        double m = -INFINITY;
        for (int64_t j = 0; j < L; ++j) {
          const double* kj = &k[(h * N + begin + j) * d];
          double dot = 0;
          for (int e = 0; e < d; ++e) dot += qi[e] * kj[e];
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < L; ++j) z += std::exp(s[j] - m);
        double* oi = &r.out[(h * N + i) * d];
        for (int64_t j = 0; j < L; ++j) {
          const double p = std::exp(s[j] - m) / z;
          const double* vj = &v[(h * N + begin + j) * d];
          for (int e = 0; e < d; ++e) oi[e] += p * vj[e];
        }
        r.lse[h * N + i] = m + std::log(z);
      }
    }
  return r;
}

struct Grads64 {
  std::vector<double> dq, dk, dv;
};

// The gradients of sum(out * dout) from the plain reference (nn::reference_attention) in float64.
Grads64 reference_grads(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                        const std::vector<float>& dout, const Pack& pack, int H, int d, double scale) {
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(pack.counts);
  const Shape shape{H, pack.total, d};
  auto leaf = [&](const std::vector<float>& x) {
    Tensor t = ops::from_vector(to_doubles(x), shape);
    t.set_requires_grad(true);
    return t;
  };
  Tensor tq = leaf(q), tk = leaf(k), tv = leaf(v);
  const Tensor w = ops::from_vector(to_doubles(dout), shape);
  sum(nn::reference_attention(tq, tk, tv, layout, scale) * w).backward();
  return {glance::testing::as_doubles(tq.grad()), glance::testing::as_doubles(tk.grad()),
          glance::testing::as_doubles(tv.grad())};
}

// ---- running the kernels on one problem --------------------------------------------------------------

struct Inputs {
  std::vector<float> q, k, v, dout;
};

Inputs random_inputs(const Pack& pack, int H, int d, uint32_t seed) {
  const size_t n = static_cast<size_t>(H * pack.total * d);
  return {random_normal(n, seed), random_normal(n, seed + 1), random_normal(n, seed + 2), random_normal(n, seed + 3)};
}

struct Results {
  std::vector<float> out, lse, dq, dk, dv;
};

// Forward (rung 3) and, when asked, backward (rung 4) on freshly poisoned buffers.
Results run_fp32(const Pack& pack, int H, int d, float scale, const Inputs& in, bool backward, bool deterministic) {
  const size_t n = static_cast<size_t>(H * pack.total * d), rows = static_cast<size_t>(H * pack.total);
  DeviceBuffer<float> q(in.q), k(in.k), v(in.v), out(n), lse(rows);
  out.poison(), lse.poison();
  const fa::Problem p = pack.problem(H, d, scale);
  fa::forward_fp32(p, q.get(), k.get(), v.get(), out.get(), lse.get());
  Results r{out.download(), lse.download(), {}, {}, {}};
  if (!backward) return r;
  DeviceBuffer<float> dout(in.dout), dq(n), dk(n), dv(n), delta(rows);
  dq.poison(), dk.poison(), dv.poison(), delta.poison();
  fa::backward_fp32(p, q.get(), k.get(), v.get(), out.get(), lse.get(), dout.get(), dq.get(), dk.get(), dv.get(),
                    delta.get(), deterministic);
  r.dq = dq.download(), r.dk = dk.download(), r.dv = dv.download();
  return r;
}

std::string label(const char* what, const Pack& pack, int d) {
  return std::string(what) + " (clips " + pack.str() + ", d " + std::to_string(d) + ")";
}

// The largest |got - expected| / max(1, |expected|) (NaN counts as infinite).
double worst_error(const std::vector<double>& got, const std::vector<double>& expected) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - expected[i]) / std::max(1.0, std::abs(expected[i]));
    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err;
  }
  return worst;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

const std::vector<int64_t> kRaggedPack{1, 7, 64, 197, 1568};                        // the CPU rung's test pack
const std::vector<int64_t> kEdgePack{0, 1, 31, 32, 33, 63, 64, 65, 127, 129};       // around every tile size
constexpr double kFp32ForwardTol = 5e-5, kFp32GradTol = 2e-4;

// ---- rung 3: fp32 forward ------------------------------------------------------------------------------

TEST(FusedAttentionCuda, ForwardFp32MatchesFloat64OnRaggedPack) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  const Pack pack(kRaggedPack);
  const int H = 2;
  for (int d : {32, 64, 128}) {
    const float scale = 1.f / std::sqrt(float(d));
    const Inputs in = random_inputs(pack, H, d, 10 + d);
    const Results got = run_fp32(pack, H, d, scale, in, false, false);
    const Forward64 ref = reference_forward(to_doubles(in.q), to_doubles(in.k), to_doubles(in.v), pack, H, d, scale);
    glance::testing::expect_all_close(to_doubles(got.out), ref.out, kFp32ForwardTol, label("out", pack, d));
    glance::testing::expect_all_close(to_doubles(got.lse), ref.lse, kFp32ForwardTol, label("lse", pack, d));
  }
}

TEST(FusedAttentionCuda, ForwardFp32EdgeLengths) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  // An empty clip, a single token, and one token either side of 32, 64 and 128 (the tile sizes).
  const Pack pack(kEdgePack);
  const int H = 3;
  for (int d : {32, 64, 128}) {
    const float scale = 0.3f;
    const Inputs in = random_inputs(pack, H, d, 20 + d);
    const Results got = run_fp32(pack, H, d, scale, in, false, false);
    const Forward64 ref = reference_forward(to_doubles(in.q), to_doubles(in.k), to_doubles(in.v), pack, H, d, scale);
    glance::testing::expect_all_close(to_doubles(got.out), ref.out, kFp32ForwardTol, label("out", pack, d));
    glance::testing::expect_all_close(to_doubles(got.lse), ref.lse, kFp32ForwardTol, label("lse", pack, d));
  }
}

TEST(FusedAttentionCuda, ForwardFp32LargeLogitsStayFinite) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  // Scores of several hundred: exp would overflow without the running max.
  const Pack pack({100, 300});
  const int H = 1, d = 64;
  Inputs in = random_inputs(pack, H, d, 30);
  for (float& x : in.q) x *= 8.f;
  const Results got = run_fp32(pack, H, d, 1.f, in, false, false);
  const Forward64 ref = reference_forward(to_doubles(in.q), to_doubles(in.k), to_doubles(in.v), pack, H, d, 1.0);
  // Scores near 200 carry absolute rounding errors near 1e-4 in fp32, hence the looser bound on out.
  glance::testing::expect_all_close(to_doubles(got.out), ref.out, 1e-3, label("out", pack, d));
  glance::testing::expect_all_close(to_doubles(got.lse), ref.lse, 1e-5, label("lse (relative)", pack, d));
}

// ---- rung 4: fp32 backward -----------------------------------------------------------------------------

TEST(FusedAttentionCuda, BackwardFp32MatchesTiledCpuGradients) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  for (const auto& counts : {kRaggedPack, kEdgePack}) {
    const Pack pack(counts);
    const int H = 2;
    for (int d : {32, 64, 128}) {
      const float scale = 1.f / std::sqrt(float(d));
      const Inputs in = random_inputs(pack, H, d, 40 + d);
      const Grads64 ref = reference_grads(in.q, in.k, in.v, in.dout, pack, H, d, scale);
      for (bool deterministic : {false, true}) {
        const Results got = run_fp32(pack, H, d, scale, in, true, deterministic);
        const std::string path = deterministic ? "deterministic " : "atomic ";
        glance::testing::expect_all_close(to_doubles(got.dq), ref.dq, kFp32GradTol, label((path + "dq").c_str(), pack, d));
        glance::testing::expect_all_close(to_doubles(got.dk), ref.dk, kFp32GradTol, label((path + "dk").c_str(), pack, d));
        glance::testing::expect_all_close(to_doubles(got.dv), ref.dv, kFp32GradTol, label((path + "dv").c_str(), pack, d));
      }
    }
  }
}

TEST(FusedAttentionCuda, DeterministicBackwardMatchesAtomicAndRepeatsBitwise) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  const Pack pack(kRaggedPack);
  const int H = 2, d = 64;
  const float scale = 0.125f;
  const Inputs in = random_inputs(pack, H, d, 50);
  const Results atomic = run_fp32(pack, H, d, scale, in, true, false);
  const Results first = run_fp32(pack, H, d, scale, in, true, true);
  const Results second = run_fp32(pack, H, d, scale, in, true, true);
  // Same maths, another summation order for dQ: equal to rounding. dK and dV come from the same source
  // on both paths (two instantiations of one kernel), so they should agree to the last bit or nearly.
  glance::testing::expect_all_close(to_doubles(first.dq), to_doubles(atomic.dq), 1e-5, "dq: deterministic vs atomic");
  glance::testing::expect_all_close(to_doubles(first.dk), to_doubles(atomic.dk), 1e-6, "dk: deterministic vs atomic");
  glance::testing::expect_all_close(to_doubles(first.dv), to_doubles(atomic.dv), 1e-6, "dv: deterministic vs atomic");
  EXPECT_EQ(first.dq, second.dq) << "the deterministic path gave different bits on a second run";
  EXPECT_EQ(first.dk, second.dk);
  EXPECT_EQ(first.dv, second.dv);
}

// ---- rung 5: variable length ---------------------------------------------------------------------------

TEST(FusedAttentionCuda, VarlenPackEqualsEachClipAlone) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  // No tile spans two clips, so clip b's results in the pack are computed exactly as when it runs alone.
  const Pack pack(kRaggedPack);
  const int H = 2;
  for (int d : {32, 64, 128}) {
    const float scale = 1.f / std::sqrt(float(d));
    const Inputs in = random_inputs(pack, H, d, 60 + d);
    const Results packed = run_fp32(pack, H, d, scale, in, true, true);
    const int64_t N = pack.total;
    for (size_t b = 0; b < pack.counts.size(); ++b) {
      const int64_t begin = pack.cu[b], L = pack.counts[b];
      const Pack alone({L});
      // Clip b's rows of every head, [H, L, d], and its rows of a [H, N] statistic, [H, L].
      auto rows = [&](const std::vector<float>& x, int width) {
        std::vector<float> y;
        for (int h = 0; h < H; ++h)
          y.insert(y.end(), x.begin() + (h * N + begin) * width, x.begin() + (h * N + begin + L) * width);
        return y;
      };
      const Inputs clip_in{rows(in.q, d), rows(in.k, d), rows(in.v, d), rows(in.dout, d)};
      const Results single = run_fp32(alone, H, d, scale, clip_in, true, true);
      const std::string what = "clip " + std::to_string(b) + " (" + std::to_string(L) + " tokens), d " + std::to_string(d);
      EXPECT_EQ(rows(packed.out, d), single.out) << what;
      EXPECT_EQ(rows(packed.lse, 1), single.lse) << what;
      EXPECT_EQ(rows(packed.dq, d), single.dq) << what;
      EXPECT_EQ(rows(packed.dk, d), single.dk) << what;
      EXPECT_EQ(rows(packed.dv, d), single.dv) << what;
    }
  }
}

// ---- rung 6: bf16 / fp16 forward on tensor cores -----------------------------------------------------

template <typename T>
T to_half(float x);
template <>
__nv_bfloat16 to_half<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__half to_half<__half>(float x) { return __float2half_rn(x); }
float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
float to_float(__half x) { return __half2float(x); }

// Runs the half forward on the inputs rounded to T; compares with float64 attention of the rounded
// inputs, so only the kernel's own roundings count: P rounded to T before P V, and the output to T.
// Stated bounds, relative to max(1, |expected|): bf16 (8-bit mantissa) 1.5e-2, fp16 (11-bit) 2e-3 on
// out; 1e-4 on lse (fp32 throughout). A rounding of the output alone costs up to 2^-9 (bf16) or
// 2^-12 (fp16) of |out|.
template <typename T>
void check_half_forward(fa::HalfType type, double out_tol, const char* name) {
  for (const auto& counts : {kRaggedPack, kEdgePack}) {
    const Pack pack(counts);
    const int H = 2;
    for (int d : {32, 64, 128}) {
      const float scale = 1.f / std::sqrt(float(d));
      const Inputs in = random_inputs(pack, H, d, 70 + d);
      const size_t n = in.q.size(), rows = static_cast<size_t>(H * pack.total);
      std::vector<T> hq(n), hk(n), hv(n);
      std::vector<double> rq(n), rk(n), rv(n);  // the rounded values, exactly, in float64
      for (size_t i = 0; i < n; ++i) {
        hq[i] = to_half<T>(in.q[i]), hk[i] = to_half<T>(in.k[i]), hv[i] = to_half<T>(in.v[i]);
        rq[i] = to_float(hq[i]), rk[i] = to_float(hk[i]), rv[i] = to_float(hv[i]);
      }
      DeviceBuffer<T> q(hq), k(hk), v(hv), out(n);
      DeviceBuffer<float> lse(rows);
      out.poison(), lse.poison();
      fa::forward_half(pack.problem(H, d, scale), type, q.get(), k.get(), v.get(), out.get(), lse.get());
      const std::vector<T> got_half = out.download();
      std::vector<double> got(n);
      for (size_t i = 0; i < n; ++i) got[i] = to_float(got_half[i]);
      const Forward64 ref = reference_forward(rq, rk, rv, pack, H, d, scale);
      const std::string what = label(name, pack, d);
      std::printf("[ info ] %s: worst out error %.3g (bound %.3g)\n", what.c_str(), worst_error(got, ref.out), out_tol);
      glance::testing::expect_all_close(got, ref.out, out_tol, what + " out");
      glance::testing::expect_all_close(to_doubles(lse.download()), ref.lse, 1e-4, what + " lse");
    }
  }
}

TEST(FusedAttentionCuda, ForwardBf16MatchesFloat64WithinBound) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  check_half_forward<__nv_bfloat16>(fa::HalfType::BFloat16, 1.5e-2, "bf16");
}

TEST(FusedAttentionCuda, ForwardFp16MatchesFloat64WithinBound) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  check_half_forward<__half>(fa::HalfType::Float16, 2e-3, "fp16");
}

// The half backward (WMMA, dQ by atomics) on the same rounded inputs, with forward_half's out and lse,
// against the CPU rung's float64 gradients of those inputs. On top of the forward's roundings, P and dS
// are rounded to T before their products, O (in D = rowsum(dO * O)) is the rounded forward output, and
// dq, dk, dv are rounded to T: stated bounds (relative to max(1, |expected|)) bf16 3e-2, fp16 5e-3.
template <typename T>
void check_half_backward(fa::HalfType type, double grad_tol, const char* name) {
  for (const auto& counts : {kRaggedPack, kEdgePack}) {
    const Pack pack(counts);
    const int H = 2;
    for (int d : {32, 64, 128}) {
      const float scale = 1.f / std::sqrt(float(d));
      const Inputs in = random_inputs(pack, H, d, 90 + d);
      const size_t n = in.q.size(), rows = static_cast<size_t>(H * pack.total);
      auto rounded = [&](const std::vector<float>& x, std::vector<T>& half) {
        half.resize(x.size());
        std::vector<float> back(x.size());
        for (size_t i = 0; i < x.size(); ++i) half[i] = to_half<T>(x[i]), back[i] = to_float(half[i]);
        return back;
      };
      std::vector<T> hq, hk, hv, hg;
      const Inputs r{rounded(in.q, hq), rounded(in.k, hk), rounded(in.v, hv), rounded(in.dout, hg)};
      DeviceBuffer<T> q(hq), k(hk), v(hv), dout(hg), out(n), dq(n), dk(n), dv(n);
      DeviceBuffer<float> lse(rows), delta(rows), dq_accum(n);
      out.poison(), lse.poison(), dq.poison(), dk.poison(), dv.poison(), delta.poison(), dq_accum.poison();
      const fa::Problem p = pack.problem(H, d, scale);
      fa::forward_half(p, type, q.get(), k.get(), v.get(), out.get(), lse.get());
      fa::backward_half(p, type, q.get(), k.get(), v.get(), out.get(), lse.get(), dout.get(), dq.get(), dk.get(),
                        dv.get(), delta.get(), dq_accum.get());
      auto doubles = [](const std::vector<T>& x) {
        std::vector<double> y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = to_float(x[i]);
        return y;
      };
      const std::vector<double> got_dq = doubles(dq.download()), got_dk = doubles(dk.download()),
                                got_dv = doubles(dv.download());
      const Grads64 ref = reference_grads(r.q, r.k, r.v, r.dout, pack, H, d, scale);
      const std::string what = label(name, pack, d);
      std::printf("[ info ] %s backward: worst dq %.3g, dk %.3g, dv %.3g (bound %.3g)\n", what.c_str(),
                  worst_error(got_dq, ref.dq), worst_error(got_dk, ref.dk), worst_error(got_dv, ref.dv), grad_tol);
      glance::testing::expect_all_close(got_dq, ref.dq, grad_tol, what + " dq");
      glance::testing::expect_all_close(got_dk, ref.dk, grad_tol, what + " dk");
      glance::testing::expect_all_close(got_dv, ref.dv, grad_tol, what + " dv");
      if (d == 64 && counts == kRaggedPack) {
        // dq = null (how the mixed-precision autograd kernels call it): dQ is left in the fp32 accumulator only,
        // within the same bound; dK and dV (no atomics) come out bit for bit as with a dq buffer.
        DeviceBuffer<T> dk2(n), dv2(n);
        DeviceBuffer<float> delta2(rows), dq_accum2(n);
        dk2.poison(), dv2.poison(), delta2.poison(), dq_accum2.poison();
        fa::backward_half(p, type, q.get(), k.get(), v.get(), out.get(), lse.get(), dout.get(), nullptr, dk2.get(),
                          dv2.get(), delta2.get(), dq_accum2.get());
        glance::testing::expect_all_close(to_doubles(dq_accum2.download()), ref.dq, grad_tol, what + " dq (fp32, dq null)");
        EXPECT_EQ(doubles(dk2.download()), got_dk) << what << ": dk with dq null";
        EXPECT_EQ(doubles(dv2.download()), got_dv) << what << ": dv with dq null";
      }
    }
  }
}

TEST(FusedAttentionCuda, BackwardBf16MatchesFloat64WithinBound) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  check_half_backward<__nv_bfloat16>(fa::HalfType::BFloat16, 3e-2, "bf16");
}

TEST(FusedAttentionCuda, BackwardFp16MatchesFloat64WithinBound) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  check_half_backward<__half>(fa::HalfType::Float16, 5e-3, "fp16");
}

// ---- the host API's errors -------------------------------------------------------------------------------

TEST(FusedAttentionCuda, RejectsBadProblemsNamingTheValue) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  const Pack pack({5, 9});
  const int H = 2, d = 64;
  const size_t n = static_cast<size_t>(H * pack.total * d);
  DeviceBuffer<float> q(n), k(n), v(n), out(n), lse(H * pack.total);
  auto forward = [&](fa::Problem p, const float* qp) {
    return error_of([&] { fa::forward_fp32(p, qp, k.get(), v.get(), out.get(), lse.get()); });
  };
  fa::Problem p = pack.problem(H, d, 0.125f);
  EXPECT_EQ(forward(p, q.get()), "(no error)");

  fa::Problem bad = p;
  bad.head_dim = 48;
  EXPECT_NE(forward(bad, q.get()).find("head dim 48"), std::string::npos) << forward(bad, q.get());
  EXPECT_NE(forward(p, nullptr).find("q is null"), std::string::npos) << forward(p, nullptr);
  EXPECT_NE(forward(p, q.get() + 1).find("not 16-byte aligned"), std::string::npos) << forward(p, q.get() + 1);
  bad = p;
  bad.max_len = 4;  // shorter than the 9-token clip
  EXPECT_NE(forward(bad, q.get()).find("max_len"), std::string::npos) << forward(bad, q.get());
  bad = p;
  bad.heads = 0;
  EXPECT_NE(forward(bad, q.get()).find("heads"), std::string::npos) << forward(bad, q.get());
  EXPECT_THROW(fa::forward_half(bad, fa::HalfType::BFloat16, q.get(), k.get(), v.get(), out.get(), lse.get()),
               std::invalid_argument);

  EXPECT_TRUE(fa::supported_head_dim(32) && fa::supported_head_dim(64) && fa::supported_head_dim(128));
  EXPECT_FALSE(fa::supported_head_dim(80));
  EXPECT_GT(fa::tiles(fa::Kernel::ForwardFp32, 64).smem_bytes, 0);
}

// ---- the autograd kernel "fused" on glance tensors -------------------------------------------------------

bool cuda_backend_present() {
  try {
    backend_for(Device::cuda());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The registered autograd kernel `name` on GPU copies of in.q, in.k, in.v ([H, N, d] each, packed per
// `layout`), then sum(out * in.dout) backpropagated: out and the three gradients, as host doubles.
struct KernelRun {
  std::vector<double> out, dq, dk, dv;
};
KernelRun run_registered_kernel(const char* name, const Inputs& in, const nn::TokenLayout& layout, int64_t H, int64_t d,
                                double scale) {
  const int64_t N = layout.total_tokens();
  auto on_gpu = [&](const std::vector<float>& x) {
    Tensor t = ops::to_device(ops::from_vector(x, {H, N, d}), Device::cuda());
    t.set_requires_grad(true);
    return t;
  };
  Tensor q = on_gpu(in.q), k = on_gpu(in.k), v = on_gpu(in.v);
  const Tensor w = ops::to_device(ops::from_vector(in.dout, {H, N, d}), Device::cuda());
  const Tensor out = nn::attention_kernel(name)(q, k, v, layout, scale);
  EXPECT_EQ(out.dtype(), DType::Float32) << name;
  sum(out * w).backward();
  auto host = [](const Tensor& t) { return glance::testing::as_doubles(ops::to_device(t, Device::cpu())); };
  return {host(out), host(q.grad()), host(k.grad()), host(v.grad())};
}

TEST(FusedAttentionKernel, RejectsTensorsOffTheGpu) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  const nn::TokenLayout layout = nn::TokenLayout::from_counts({4});
  const Tensor x = ops::zeros({1, 4, 64});
  const std::string err = error_of([&] { nn::attention_kernel("fused")(x, x, x, layout, 1.0); });
  EXPECT_NE(err.find("q is on cpu"), std::string::npos) << err;
}

TEST(FusedAttentionKernel, KernelMatchesReferenceValuesAndGradients) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build (tensors cannot live on cuda yet)";
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(kRaggedPack);
  const int64_t H = 2;
  // 64 runs as is; 80 (ViT-H) and 16 are zero-padded to 128 and 32 by the wrapper.
  for (int64_t d : {64, 80, 16}) {
    for (const char* name : {"fused", "fused_deterministic"}) {
      const double scale = 1.0 / std::sqrt(double(d));
      const Pack pack(kRaggedPack);
      const Inputs in = random_inputs(pack, int(H), int(d), 80 + int(d));
      const KernelRun got = run_registered_kernel(name, in, layout, H, d, scale);
      const Forward64 ref = reference_forward(to_doubles(in.q), to_doubles(in.k), to_doubles(in.v), pack, int(H),
                                              int(d), scale);
      const Grads64 grads = reference_grads(in.q, in.k, in.v, in.dout, pack, int(H), int(d), scale);
      const std::string what = std::string(name) + ", d " + std::to_string(d);
      glance::testing::expect_all_close(got.out, ref.out, kFp32ForwardTol, what + " out");
      glance::testing::expect_all_close(got.dq, grads.dq, kFp32GradTol, what + " dq");
      glance::testing::expect_all_close(got.dk, grads.dk, kFp32GradTol, what + " dk");
      glance::testing::expect_all_close(got.dv, grads.dv, kFp32GradTol, what + " dv");
    }
  }
}

// ---- mixed precision: the autograd kernels "fused_bf16" and "fused_fp16" on fp32 tensors --------------

template <typename T>
std::vector<float> rounded_to(const std::vector<float>& x) {  // what the kernels see after round_to_half
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = to_float(to_half<T>(x[i]));
  return y;
}

// The wrappers round q, k, v and the incoming gradient on the device (half_cast.cu), run rung 6 and widen
// the results: against float64 attention of the same inputs rounded on the host, within rung 6's bounds,
// on the ragged pack, at d = 64 and at d = 16 (zero-padded to 32 by the wrapper).
template <typename T>
void check_mixed_precision_kernel(const char* name, double out_tol, double grad_tol) {
  const Pack pack(kRaggedPack);
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(kRaggedPack);
  const int64_t H = 2;
  for (int64_t d : {64, 16}) {
    const double scale = 1.0 / std::sqrt(double(d));
    const Inputs in = random_inputs(pack, int(H), int(d), 110 + int(d));
    const KernelRun got = run_registered_kernel(name, in, layout, H, d, scale);
    const Inputs r{rounded_to<T>(in.q), rounded_to<T>(in.k), rounded_to<T>(in.v), rounded_to<T>(in.dout)};
    const Forward64 ref = reference_forward(to_doubles(r.q), to_doubles(r.k), to_doubles(r.v), pack, int(H), int(d),
                                            scale);
    const Grads64 grads = reference_grads(r.q, r.k, r.v, r.dout, pack, int(H), int(d), scale);
    const std::string what = std::string(name) + ", d " + std::to_string(d);
    std::printf("[ info ] %s: worst out %.3g (bound %.3g), dq %.3g, dk %.3g, dv %.3g (bound %.3g)\n", what.c_str(),
                worst_error(got.out, ref.out), out_tol, worst_error(got.dq, grads.dq), worst_error(got.dk, grads.dk),
                worst_error(got.dv, grads.dv), grad_tol);
    glance::testing::expect_all_close(got.out, ref.out, out_tol, what + " out");
    glance::testing::expect_all_close(got.dq, grads.dq, grad_tol, what + " dq");
    glance::testing::expect_all_close(got.dk, grads.dk, grad_tol, what + " dk");
    glance::testing::expect_all_close(got.dv, grads.dv, grad_tol, what + " dv");
  }
}

TEST(FusedAttentionKernel, Bf16KernelMatchesFloat64OnRoundedInputs) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  check_mixed_precision_kernel<__nv_bfloat16>("fused_bf16", 1.5e-2, 3e-2);
}

TEST(FusedAttentionKernel, Fp16KernelMatchesFloat64OnRoundedInputs) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  check_mixed_precision_kernel<__half>("fused_fp16", 2e-3, 5e-3);
}

// Why fp16 training needs loss scaling, shown on the kernel: with an incoming gradient of ~1e-7 per element
// (a loss averaged over many tokens gives such), fp16 (smallest subnormal 6e-8) rounds it, and the even
// smaller dS, to a few subnormal steps or zero; the gradients are mostly noise. Multiplying the loss by
// 2^16 and dividing the gradients afterwards (what nn::LossScaler does) moves everything into fp16's normal
// range. bf16 has fp32's exponent range and needs no scaling. Errors relative to the largest |gradient|,
// against float64 gradients of the fp32 inputs.
TEST(FusedAttentionKernel, Fp16GradientsUnderflowWithoutLossScaling) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  const std::vector<int64_t> counts{1, 7, 64, 197};
  const Pack pack(counts);
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(counts);
  const int64_t H = 2, d = 64;
  const double scale = 1.0 / std::sqrt(double(d));
  Inputs in = random_inputs(pack, int(H), int(d), 123);
  for (float& x : in.dout) x *= 1e-7f;
  const Grads64 ref = reference_grads(in.q, in.k, in.v, in.dout, pack, int(H), int(d), scale);

  // Largest error of dq, dk, dv relative to each one's largest |value|. The loss scaled by S is the incoming
  // gradient scaled by S (exactly: S is a power of two).
  auto relative_error = [&](const char* kernel, double loss_scale) {
    Inputs scaled = in;
    for (float& x : scaled.dout) x *= static_cast<float>(loss_scale);
    const KernelRun got = run_registered_kernel(kernel, scaled, layout, H, d, scale);
    double worst = 0;
    const std::pair<const std::vector<double>*, const std::vector<double>*> pairs[3] = {
        {&got.dq, &ref.dq}, {&got.dk, &ref.dk}, {&got.dv, &ref.dv}};
    for (const auto& [grad, want] : pairs) {
      double largest = 0, err = 0;
      for (size_t i = 0; i < grad->size(); ++i) {
        largest = std::max(largest, std::fabs((*want)[i]));
        err = std::max(err, std::fabs((*grad)[i] / loss_scale - (*want)[i]));
      }
      worst = std::max(worst, err / largest);
    }
    std::printf("[ info ] %s, loss scale %g: worst gradient error %.3g of the largest gradient\n", kernel,
                loss_scale, worst);
    return worst;
  };
  EXPECT_GT(relative_error("fused_fp16", 1.0), 0.1) << "fp16 without loss scaling should lose these gradients";
  EXPECT_LT(relative_error("fused_fp16", 65536.0), 1e-2) << "2^16 moves them into fp16's normal range";
  EXPECT_LT(relative_error("fused_bf16", 1.0), 3e-2) << "bf16 keeps fp32's range";
}

TEST(FusedAttentionKernel, DeterministicHalfPrecisionIsRefused) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  const nn::TokenLayout layout = nn::TokenLayout::from_counts({4});
  const Tensor x = ops::zeros({1, 4, 64}, DType::Float32, Device::cuda());
  const AttentionOptions options{.scale = 1.0, .precision = AttentionPrecision::BFloat16, .deterministic = true};
  const std::string err = error_of([&] { nn::backend_attention(x, x, x, layout, options); });
  EXPECT_NE(err.find("deterministic backward exists in fp32 only"), std::string::npos) << err;
}

// The half backward at head dim 128 needs ~120 KB of shared memory per block: an A100 or H100 has it, an
// sm_86 / sm_89 GPU (99 KB) does not. There the forward pass of a training step must already refuse, naming
// the sizes, instead of failing in backward(). (Under the emulator, SIM_OPTIN_SMEM=101376 takes the refusing
// branch; on an H100 this checks the forward and backward that do fit.)
TEST(FusedAttentionKernel, HalfBackwardThatCannotFitIsRefusedBeforeTheForwardPass) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  const nn::TokenLayout layout = nn::TokenLayout::from_counts({5, 9});
  Tensor q = ops::to_device(ops::ones({1, 14, 128}), Device::cuda());
  q.set_requires_grad(true);
  int limit = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  const int need = fa::tiles(fa::Kernel::BackwardHalf, 128).smem_bytes;
  std::printf("[ info ] half backward at d 128: %d bytes of shared memory, this GPU allows %d\n", need, limit);
  if (need > limit) {
    const std::string err = error_of([&] { nn::attention_kernel("fused_bf16")(q, q, q, layout, 0.1); });
    EXPECT_NE(err.find("needs " + std::to_string(need) + " bytes of shared memory"), std::string::npos) << err;
    autograd::NoGradGuard no_grad;  // inference needs only the forward kernel, which fits
    EXPECT_EQ(error_of([&] { nn::attention_kernel("fused_bf16")(q, q, q, layout, 0.1); }), "(no error)");
  } else {
    EXPECT_EQ(error_of([&] { sum(nn::attention_kernel("fused_bf16")(q, q, q, layout, 0.1)).backward(); }),
              "(no error)");
  }
}

// A contiguous view whose storage offset is one float (a slice of a flat buffer) is not 16-byte aligned;
// the wrapper copies it to an aligned tensor and gives the aligned input's bits.
TEST(FusedAttentionKernel, MisalignedContiguousViewsAreCopiedNotRefused) {
  if (!glance::cuda::available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_backend_present()) GTEST_SKIP() << "no CUDA Backend in this build";
  const nn::TokenLayout layout = nn::TokenLayout::from_counts({5, 9});
  const int64_t H = 2, N = 14, d = 64;
  const std::vector<float> values = random_normal(static_cast<size_t>(1 + H * N * d), 7);
  const Tensor flat = ops::to_device(ops::from_vector(values, {1 + H * N * d}), Device::cuda());
  const Tensor shifted = ops::reshape(ops::narrow(flat, 0, 1, H * N * d), {H, N, d});  // offset: 1 float
  ASSERT_NE(reinterpret_cast<uintptr_t>(shifted.raw_data()) % 16, 0u);
  const Tensor aligned = ops::clone(shifted);
  for (const char* name : {"fused", "fused_bf16"}) {
    std::string err;
    Tensor got;
    err = error_of([&] { got = nn::attention_kernel(name)(shifted, shifted, shifted, layout, 0.125); });
    ASSERT_EQ(err, "(no error)") << name;
    const Tensor want = nn::attention_kernel(name)(aligned, aligned, aligned, layout, 0.125);
    EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>()) << name;
  }
}

}  // namespace
