// Tests for the CPU GEMM (tensor/cpu/gemm.h): sgemm and dgemm against gemm_naive computed in double.
//
// The sizes are chosen to hit every path of the blocked code: odd sizes leave partial register tiles in M
// and N (edge tiles), and a few cases are larger than the cache blocks in each dimension (KC = 384 floats or
// 192 doubles, NC = 512 floats or 256 doubles, MC = 3072 rows) so the loops over blocks run more than once.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tensor/cpu/gemm.h"

namespace {

using glance::cpu::gemm_naive;

void fast_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  glance::cpu::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void fast_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
               const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  glance::cpu::dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Sets the OpenMP thread count for one scope and restores it afterwards.
struct ThreadScope {
  int saved = omp_get_max_threads();
  explicit ThreadScope(int n) { omp_set_num_threads(n); }
  ~ThreadScope() { omp_set_num_threads(saved); }
};

struct Problem {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra elements per row: lda = row length + pad_a, ...
  double alpha = 1, beta = 0;
  bool nan_c = false;  // fill C with NaN before the call (only meaningful with beta == 0)
};

// Runs one problem through the fast GEMM of type T and through gemm_naive (in double, on the same
// T-rounded inputs) and compares every element of C, including that the row padding of C is untouched.
template <class T>
void check(const Problem& p, uint32_t seed = 7) {
  SCOPED_TRACE(::testing::Message() << "ta=" << p.ta << " tb=" << p.tb << " M=" << p.M << " N=" << p.N
                                    << " K=" << p.K << " pads=" << p.pad_a << "," << p.pad_b << "," << p.pad_c
                                    << " alpha=" << p.alpha << " beta=" << p.beta << " nan_c=" << p.nan_c);
  const int64_t a_rows = p.ta ? p.K : p.M, a_cols = p.ta ? p.M : p.K;
  const int64_t b_rows = p.tb ? p.N : p.K, b_cols = p.tb ? p.K : p.N;
  const int64_t lda = a_cols + p.pad_a, ldb = b_cols + p.pad_b, ldc = p.N + p.pad_c;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  auto fill = [&](std::vector<T>& v) {
    for (auto& x : v) x = T(dist(rng));
  };
  std::vector<T> A(std::max<int64_t>(a_rows * lda, 1)), B(std::max<int64_t>(b_rows * ldb, 1));
  std::vector<T> C(std::max<int64_t>(p.M * ldc, 1));
  fill(A);
  fill(B);
  fill(C);
  const T sentinel = T(12345.0);
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = p.N; j < ldc; ++j) C[i * ldc + j] = sentinel;
  if (p.nan_c)
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) C[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();

  std::vector<double> Ad(A.begin(), A.end()), Bd(B.begin(), B.end()), Cd(C.begin(), C.end());
  gemm_naive(p.ta, p.tb, p.M, p.N, p.K, p.alpha, Ad.data(), lda, Bd.data(), ldb, p.beta, Cd.data(), ldc);
  fast_gemm(p.ta, p.tb, p.M, p.N, p.K, T(p.alpha), A.data(), lda, B.data(), ldb, T(p.beta), C.data(), ldc);

  // Inputs lie in [-1, 1], so each of the K products is at most 1 in size and the rounding error of a sum
  // of K of them grows at most linearly in K (in practice like sqrt(K)).
  const double eps = std::numeric_limits<T>::epsilon();
  const double tol = 2 * eps * ((p.K + 2) * std::fabs(p.alpha) + 2 * std::fabs(p.beta)) + 1e-30;
  int64_t bad = 0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const double got = C[i * ldc + j], want = j < p.N ? Cd[i * ldc + j] : double(sentinel);
      const bool ok = j < p.N ? std::fabs(got - want) <= tol : got == want;  // NaN fails both
      if (!ok && ++bad <= 5) ADD_FAILURE() << "C[" << i << "," << j << "] = " << got << ", want " << want;
    }
  }
  EXPECT_EQ(bad, 0) << "elements out of tolerance " << tol;
}

template <class T>
class GemmTest : public ::testing::Test {};
using GemmTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GemmTest, GemmTypes);

TEST(GemmNaive, HandComputed2x3Times3x2) {
  // [1 2 3]   [ 7  8]   [1*7+2*9+3*11  1*8+2*10+3*12]   [ 58  64]
  // [4 5 6] x [ 9 10] = [4*7+5*9+6*11  4*8+5*10+6*12] = [139 154]
  //           [11 12]
  const double A[] = {1, 2, 3, 4, 5, 6}, B[] = {7, 8, 9, 10, 11, 12};
  double C[4] = {1, 1, 1, 1};
  gemm_naive(false, false, 2, 2, 3, 1.0, A, 3, B, 2, 0.0, C, 2);
  EXPECT_EQ(C[0], 58);
  EXPECT_EQ(C[1], 64);
  EXPECT_EQ(C[2], 139);
  EXPECT_EQ(C[3], 154);
  // The same product from the transposed storage: A^T is 3x2 [1 4; 2 5; 3 6], B^T is 2x3 [7 9 11; 8 10 12];
  // alpha = 2 and beta = 1 on C = [1 2; 3 4].
  const double At[] = {1, 4, 2, 5, 3, 6}, Bt[] = {7, 9, 11, 8, 10, 12};
  double C2[4] = {1, 2, 3, 4};
  gemm_naive(true, true, 2, 2, 3, 2.0, At, 2, Bt, 3, 1.0, C2, 2);
  EXPECT_EQ(C2[0], 117);
  EXPECT_EQ(C2[1], 130);
  EXPECT_EQ(C2[2], 281);
  EXPECT_EQ(C2[3], 312);
}

TYPED_TEST(GemmTest, AllTransposesOddSizes) {
  const int64_t shapes[][3] = {{1, 1, 1},    {7, 13, 31},  {13, 7, 1},    {31, 33, 65},
                               {65, 100, 7}, {100, 31, 257}, {257, 65, 33}, {33, 257, 100}};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const auto& s : shapes) {
        Problem p;
        p.ta = ta, p.tb = tb, p.M = s[0], p.N = s[1], p.K = s[2];
        check<TypeParam>(p);
      }
}

TYPED_TEST(GemmTest, LargerThanTheCacheBlocks) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Problem p;  // K > KC and N > NC for both float and double
      p.ta = ta, p.tb = tb, p.M = 13, p.N = 530, p.K = 600, p.beta = 0.5;
      check<TypeParam>(p);
    }
  Problem tall;  // M > MC: two M blocks
  tall.M = 3100, tall.N = 33, tall.K = 9, tall.alpha = -1, tall.beta = 1;
  check<TypeParam>(tall);
}

TYPED_TEST(GemmTest, LeadingDimensionsLargerThanRows) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Problem p;
      p.ta = ta, p.tb = tb, p.M = 45, p.N = 70, p.K = 29, p.pad_a = 3, p.pad_b = 17, p.pad_c = 5, p.beta = 1;
      check<TypeParam>(p);
    }
}

TYPED_TEST(GemmTest, AlphaBeta) {
  const double ab[][2] = {{1, 0}, {2.5, 0}, {1, 1}, {-0.5, 2}, {0.75, -1.25}};
  for (const auto& x : ab) {
    Problem p;
    p.M = 50, p.N = 70, p.K = 90, p.alpha = x[0], p.beta = x[1];
    check<TypeParam>(p);
  }
}

TYPED_TEST(GemmTest, BetaZeroOverwritesNaN) {
  // beta == 0 must not read C: NaN (or any garbage) already there is overwritten, in full and edge tiles.
  for (bool tb : {false, true}) {
    Problem p;
    p.tb = tb, p.M = 67, p.N = 131, p.K = 20, p.beta = 0, p.nan_c = true, p.pad_c = 3;
    check<TypeParam>(p);
    p.alpha = 3;
    check<TypeParam>(p);
  }
}

TYPED_TEST(GemmTest, ZeroSizes) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 2, 3, 4, 5, 6};
  // K == 0: C = beta * C; with beta == 0 that is exactly zero even over NaN.
  T C[6] = {1, 2, 3, 4, 5, 6};
  fast_gemm(false, false, 2, 3, 0, T(1), A, 1, B, 3, T(2), C, 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(C[i], T(2 * (i + 1)));
  T Cn[6] = {nan, nan, nan, nan, nan, nan};
  fast_gemm(false, false, 2, 3, 0, T(1), A, 1, B, 3, T(0), Cn, 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Cn[i], T(0));
  // M == 0 or N == 0: nothing is written (null pointers are fine, nothing is read).
  T Cs[6] = {1, 2, 3, 4, 5, 6};
  fast_gemm(false, false, 0, 3, 2, T(1), nullptr, 2, B, 3, T(0), Cs, 3);
  fast_gemm(false, false, 2, 0, 2, T(1), A, 2, nullptr, 1, T(0), Cs, 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Cs[i], T(i + 1));
}

TYPED_TEST(GemmTest, AlphaZeroReadsNeitherAnorB) {
  // BLAS semantics: alpha == 0 gives C = beta * C without touching A and B (NaN there must not leak).
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T A[6] = {nan, nan, nan, nan, nan, nan}, B[6] = {nan, nan, nan, nan, nan, nan};
  T C[4] = {1, 2, 3, 4};
  fast_gemm(false, false, 2, 2, 3, T(0), A, 3, B, 2, T(-1), C, 2);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(C[i], T(-(i + 1)));
}

TYPED_TEST(GemmTest, ThreadCountsAgree) {
  // Threads only split C into blocks: every element is summed in the same order, so 2, 3 and 4 threads
  // (split along M, along N, or a 2 x 2 grid) give results identical to 1 thread.
  using T = TypeParam;
  const int64_t shapes[][3] = {{150, 300, 450}, {300, 100, 200}};  // M, N, K: a wide C and a tall C
  for (const auto& s : shapes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    std::vector<T> A(M * K), B(K * N);
    for (auto& x : A) x = T(dist(rng));
    for (auto& x : B) x = T(dist(rng));
    for (bool tb : {false, true}) {
      std::vector<T> C1(M * N);
      {
        ThreadScope one(1);
        fast_gemm(false, tb, M, N, K, T(1), A.data(), K, B.data(), tb ? K : N, T(0), C1.data(), N);
      }
      for (int threads : {2, 3, 4}) {
        std::vector<T> Cn(M * N);
        ThreadScope scope(threads);
        fast_gemm(false, tb, M, N, K, T(1), A.data(), K, B.data(), tb ? K : N, T(0), Cn.data(), N);
        EXPECT_EQ(C1, Cn) << "M=" << M << " N=" << N << " tb=" << tb << " threads=" << threads;
      }
    }
    // And the threaded result is right.
    Problem p;
    p.M = M, p.N = N, p.K = K;
    ThreadScope two(2);
    check<T>(p);
  }
}

}  // namespace
