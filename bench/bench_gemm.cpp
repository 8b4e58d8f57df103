// bench_gemm: glance::cpu::sgemm / dgemm against OpenBLAS, in the same process, on the same data.
//
//   bench_gemm [--threads N] [--rounds R] [--quick]      (defaults: 2 threads, 5 rounds)
//
// Prints one JSON object per case on stdout and nothing else (progress goes to stderr):
//   {"bench":"gemm_f32","case":"MxKxN","glance":G,"reference":R,"unit":"GFLOP/s","ratio":G/R,...}
// The case name reads as the shapes [M,K] x [K,N]; a "_bT" suffix means B is passed transposed (trans_b).
// GFLOP/s = 2*M*N*K / best time. Timing: after warm-up calls, the two libraries run in alternating rounds
// (glance x R, OpenBLAS x R, glance x R, ...; 5 rounds by default) and each keeps its best (minimum) time,
// the usual statistic on a shared, noisy machine. Between rounds the program sleeps 0.2 s: each library's
// idle worker threads keep polling for work for a while after a call (OpenBLAS: OPENBLAS_THREAD_TIMEOUT;
// OpenMP: OMP_WAIT_POLICY / GOMP_SPINCOUNT), and a polling thread of one library steals a core from the
// other library's next call (on a loaded machine a glance call made right after an OpenBLAS call was
// measured many times slower than one made after the pause).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tensor/cpu/gemm.h"

namespace {

struct Case {
  int64_t M, K, N;
  bool trans_b;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class T>
void glance_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T* C, int64_t ldc) {
  if constexpr (sizeof(T) == 4)
    glance::cpu::sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
  else
    glance::cpu::dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}

template <class T>
void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
               int64_t ldb, T* C, int64_t ldc) {
  auto t = [](bool x) { return x ? CblasTrans : CblasNoTrans; };
  if constexpr (sizeof(T) == 4)
    cblas_sgemm(CblasRowMajor, t(ta), t(tb), M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
  else
    cblas_dgemm(CblasRowMajor, t(ta), t(tb), M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}

template <class T>
void run_case(const char* bench, const Case& cs, int threads, int rounds, double budget_s) {
  const int64_t M = cs.M, N = cs.N, K = cs.K;
  const bool tb = cs.trans_b;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<T> A(M * K), B(K * N), C1(M * N), C2(M * N);
  for (auto& x : A) x = T(dist(rng));
  for (auto& x : B) x = T(dist(rng));
  const int64_t lda = K, ldb = tb ? K : N, ldc = N;

  auto time_one = [&](auto&& f) {
    double t0 = now_s();
    f();
    return now_s() - t0;
  };
  auto g = [&] { glance_gemm<T>(false, tb, M, N, K, A.data(), lda, B.data(), ldb, C1.data(), ldc); };
  auto r = [&] { blas_gemm<T>(false, tb, M, N, K, A.data(), lda, B.data(), ldb, C2.data(), ldc); };

  // Warm up (packing buffers, thread pools, page faults) and size the rounds from one timed call each.
  auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); };
  pause();
  g();
  double best_g = time_one(g);
  pause();
  r();
  double best_r = time_one(r);
  const int per_round = int(std::clamp(budget_s / rounds / (best_g + best_r), 1.0, 200.0));
  for (int round = 0; round < rounds; ++round) {
    pause();
    for (int i = 0; i < per_round; ++i) best_g = std::min(best_g, time_one(g));
    pause();
    for (int i = 0; i < per_round; ++i) best_r = std::min(best_r, time_one(r));
  }

  double max_err = 0, max_ref = 0;
  for (int64_t i = 0; i < M * N; ++i) {
    max_err = std::max(max_err, double(std::fabs(C1[i] - C2[i])));
    max_ref = std::max(max_ref, double(std::fabs(C2[i])));
  }
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const double gg = flops / best_g * 1e-9, gr = flops / best_r * 1e-9;
  std::string name = std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) + (tb ? "_bT" : "");
  std::printf(
      "{\"bench\":\"%s\",\"case\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"trans_b\":%s,\"threads\":%d,"
      "\"glance\":%.1f,\"reference\":%.1f,\"unit\":\"GFLOP/s\",\"ratio\":%.3f,\"stat\":\"best\",\"reps\":%d,"
      "\"glance_ms\":%.3f,\"reference_ms\":%.3f,\"max_abs_err\":%.3g,\"max_abs_ref\":%.3g}\n",
      bench, name.c_str(), (long long)M, (long long)N, (long long)K, tb ? "true" : "false", threads, gg, gr,
      gg / gr, rounds * per_round + 1, best_g * 1e3, best_r * 1e3, max_err, max_ref);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 0;  // 0: the default, 5 rounds (2 with --quick)
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--rounds R] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (rounds == 0) rounds = quick ? 2 : 5;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  std::fprintf(stderr, "bench_gemm: %d threads, OpenBLAS config: %s\n", threads, openblas_get_config());

  std::vector<Case> f32, f64;
  if (quick) {
    f32 = {{256, 256, 256, false}, {512, 512, 512, false}, {197, 768, 256, false}, {256, 256, 256, true}};
    f64 = {{256, 256, 256, false}};
  } else {
    f32 = {{256, 256, 256, false},    {512, 512, 512, false},   {1024, 1024, 1024, false},
           {2048, 2048, 2048, false}, {3136, 192, 768, false},  {3136, 768, 192, false},
           {197, 768, 2304, false},   {197, 768, 768, false},   {1024, 1024, 1024, true},
           {197, 768, 2304, true}};
    f64 = {{512, 512, 512, false}, {1024, 1024, 1024, false}};
  }
  const double budget = quick ? 0.2 : 1.0;  // seconds of timed calls per case (both libraries together)
  {  // start both thread pools before the first case is timed
    std::vector<float> x(256 * 256, 1.0f), y(256 * 256);
    glance::cpu::sgemm(false, false, 256, 256, 256, 1.0f, x.data(), 256, x.data(), 256, 0.0f, y.data(), 256);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 256, 256, 256, 1.0f, x.data(), 256, x.data(), 256, 0.0f,
                y.data(), 256);
  }
  for (const Case& c : f32) {
    std::fprintf(stderr, "f32 %lldx%lldx%lld%s\n", (long long)c.M, (long long)c.K, (long long)c.N,
                 c.trans_b ? " bT" : "");
    run_case<float>("gemm_f32", c, threads, rounds, budget);
  }
  for (const Case& c : f64) {
    std::fprintf(stderr, "f64 %lldx%lldx%lld\n", (long long)c.M, (long long)c.K, (long long)c.N);
    run_case<double>("gemm_f64", c, threads, rounds, budget);
  }
  return 0;
}
