// The CPU GEMM, written the way BLIS and GotoBLAS write it. C = alpha * op(A) * op(B) + beta * C, row-major.
//
// The whole speed story is memory. Each core can start two 16-wide FMAs per cycle, and even the L2 cache
// cannot feed operands at that rate, let alone main memory. So the work is cut into blocks sized for each
// level of the memory hierarchy, and nearly every operand the FMAs consume comes out of a register or L1:
//
//   for ic in M step MC                  loop 5   rows of A and C            the packed A block lives in L3
//     for pc in K step KC                loop 4   one rank-KC update of C
//       pack op(A)[ic:+MC, pc:+KC] -> Ap           (MC x KC)
//       for jc in N step NC              loop 3                              the packed B block lives in L2
//         pack op(B)[pc:+KC, jc:+NC] -> Bp         (KC x NC)
//         for ir in MC step MR           loop 2   one A micro-panel (MR x KC) stays in L1
//           for jr in NC step NR         loop 1   B micro-panels (KC x NR) stream from L2
//             micro-kernel: C[ir:+MR, jr:+NR] += Ap panel * Bp panel   (an MR x NR tile held in registers)
//
// Row-major C = A*B is column-major C^T = B^T * A^T, so this is BLIS's loop nest with the roles of A and B
// swapped: the operand broadcast one element at a time (A) sits in L1 and the operand loaded as whole
// vectors (B) streams from L2. Packing copies each block into the exact order the micro-kernel reads it
// (contiguous, 64-byte aligned, transposes already applied, edges padded with zeros), so the kernel has a
// single code path. Threads each take their own block of C and run the five loops on it (section 6).
#include "tensor/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace glance::cpu {
namespace {

// ---- 1. The SIMD vocabulary: one vector type V of W lanes and the operations the kernel needs. ----
// The register tile is MR rows x NV vectors. It must fit the register file together with the NV loaded B
// vectors and one broadcast A value: AVX-512 has 32 zmm registers, 8 x 3 = 24 accumulators (+3 +1);
// AVX2 has 16 ymm registers, 6 x 2 = 12 (+2 +1); the portable SSE2 build 16 xmm registers, 4 x 2.
// Per k the kernel does MR*NV FMAs for NV vector loads and MR broadcasts. Measured on the Xeon (Skylake-SP)
// this was written on, with the same packing, 8 x 48 beat 12 x 32, 14 x 32, 6 x 64 and 9 x 48.
template <class T>
struct Simd;
#if defined(__AVX512F__)
constexpr int64_t kMR = 8, kNV = 3;  // float tile 8 x 48, double tile 8 x 24
template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int64_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int64_t W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int64_t kMR = 6, kNV = 2;  // float tile 6 x 16, double tile 6 x 8
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int64_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int64_t W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};
#else
// Portable: GCC/Clang vector extensions, 16 bytes wide (SSE2 on plain x86-64). No FMA is assumed, so
// fma() is a multiply and an add.
constexpr int64_t kMR = 4, kNV = 2;  // float tile 4 x 8, double tile 4 x 4
template <class T>
struct PortableSimd {
  typedef T V __attribute__((vector_size(16)));
  static constexpr int64_t W = 16 / sizeof(T);
  static V zero() { return V{}; }
  static V set1(T x) { return V{} + x; }
  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof v); }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
};
template <>
struct Simd<float> : PortableSimd<float> {};
template <>
struct Simd<double> : PortableSimd<double> {};
#endif

// ---- 2. Block sizes. ----
// MR, NR: the register tile above (8 x 48 floats with AVX-512).
// KC: an A micro-panel (MR x KC) stays in the 32 KiB L1 while all the B micro-panels of the block stream
//     past it: 8 x 384 floats = 12 KiB, leaving room for the B stream. A long KC also spreads the load and
//     store of the C tile (once per KC) over more FMAs.
// NC: the packed B block (KC x NC) stays in the 1 MiB per-core L2: 384 x 384 floats = 576 KiB, about
//     half of it, since the A micro-panels and C tiles pass through L2 too.
// MC: the packed A block (MC x KC) lives in L3: up to 3072 x 384 floats = 4.5 MiB. It bounds the
//     buffer; most problems have a single M block per thread.
// Double uses the same byte budgets, so half the element counts in K and N.
template <class T>
struct Blocking {
  static constexpr int64_t MR = kMR;
  static constexpr int64_t NR = kNV * Simd<T>::W;
  static constexpr int64_t KC = 384 * 4 / sizeof(T);
  static constexpr int64_t NC = 384 * 4 / sizeof(T);
  static constexpr int64_t MC = 3072;
};

constexpr int64_t kPrefetch = 8;  // micro-kernel: how many k-iterations ahead B is prefetched

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Packing buffers are reused across calls: one per thread and purpose, grown on demand and never shrunk.
// (A fresh allocation of a few MiB per call would be page-faulted in again on every call.)
void* scratch(int slot, size_t bytes) {
  struct Buffer {
    void* p = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  if (bytes > b.size) {
    std::free(b.p);
    b.size = round_up(int64_t(bytes), 4096);
    b.p = std::aligned_alloc(64, b.size);
    if (b.p == nullptr) {
      b.size = 0;
      throw std::bad_alloc();
    }
  }
  return b.p;
}

// ---- 3. Packing. ----
// Copies a kb x w slice X of a matrix into panels of R columns: column j of X goes to panel j / R, and
// panel q is stored at dst + q*R*kb as kb rows of R elements, dst_q[k*R + j % R] = X(k, j). Columns past w in
// the last panel are zero, so edge tiles need no special case inside the kernel. X(k, j) is src[k*ld + j]
// (rows of X contiguous) or, when `transposed`, src[j*ld + k] (columns of X contiguous).
//   A block: X(k, i) = op(A)(i, k), R = MR.   B block: X(k, j) = op(B)(k, j), R = NR.
#if defined(__AVX__)
// Transposes the 8 x 8 block s (rows s + r*ls) into d (rows d + r*ld). Float: three rounds of shuffles.
inline void transpose8x8(const float* s, int64_t ls, float* d, int64_t ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ls);
  for (int i = 0; i < 8; i += 2) {  // interleave pairs of rows: 2 x 2 blocks
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // 4 x 4 blocks within each 128-bit lane
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // swap the off-diagonal 128-bit lanes
    _mm256_storeu_ps(d + i * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(d + (i + 4) * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
// The same for double, as four 4 x 4 transposes.
inline void transpose8x8(const double* s, int64_t ls, double* d, int64_t ld) {
  for (int bi = 0; bi < 8; bi += 4)
    for (int bj = 0; bj < 8; bj += 4) {
      const double* p = s + bi * ls + bj;
      __m256d r0 = _mm256_loadu_pd(p), r1 = _mm256_loadu_pd(p + ls);
      __m256d r2 = _mm256_loadu_pd(p + 2 * ls), r3 = _mm256_loadu_pd(p + 3 * ls);
      __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
      __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      double* q = d + bj * ld + bi;
      _mm256_storeu_pd(q, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(q + ld, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(q + 2 * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(q + 3 * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
}
#endif

template <int64_t R, class T>
void pack(const T* src, int64_t ld, bool transposed, int64_t kb, int64_t w, T* dst) {
  const int64_t panels = ceil_div(w, R);
  if (!transposed) {  // sweep X row by row (long contiguous reads), scattering each row over the panels
    for (int64_t k = 0; k < kb; ++k) {
      const T* s = src + k * ld;
      for (int64_t q = 0; q < panels; ++q) {
        T* d = dst + q * R * kb + k * R;
        const int64_t n = std::min(R, w - q * R);
        for (int64_t j = 0; j < n; ++j) d[j] = s[q * R + j];
        for (int64_t j = n; j < R; ++j) d[j] = T(0);
      }
    }
    return;
  }
  // Transposed: each column j of X is a contiguous row of src. Work in 8 x 8 blocks so that both the
  // reads (8 values of one source row) and the writes (8 values of one panel row) are contiguous, and
  // walk 8 source rows at a time along k (8 sequential streams, easy for the hardware prefetcher).
  for (int64_t q = 0; q < panels; ++q) {
    T* d = dst + q * R * kb;
    const int64_t n = std::min(R, w - q * R);
    const T* s = src + q * R * ld;
    for (int64_t j0 = 0; j0 < R; j0 += 8) {
      const int64_t jn = std::min<int64_t>(8, n - j0);
      for (int64_t k0 = 0; k0 < kb; k0 += 8) {
        const int64_t kn = std::min<int64_t>(8, kb - k0);
#if defined(__AVX__)
        if constexpr (R % 8 == 0) {
          if (kn == 8 && jn == 8) {
            transpose8x8(s + j0 * ld + k0, ld, d + k0 * R + j0, R);
            continue;
          }
        }
#endif
        for (int64_t k = k0; k < k0 + kn; ++k)
          for (int64_t j = j0; j < std::min(j0 + 8, R); ++j) d[k * R + j] = j - j0 < jn ? s[j * ld + k] : T(0);
      }
    }
  }
}

// ---- 4. The micro-kernel: an MR x (NV*W) tile of C, C = alpha * (a * b) + beta * C. ----
// a is an MR x kc micro-panel stored k-major (MR values per k), b a kc x NR micro-panel (NR values per k).
// Per k it loads NV vectors of b, broadcasts each of the MR values of a, and does MR x NV FMAs into the
// accumulators, which never leave the registers until the end. beta == 0 never reads C (C may be garbage).
// NV is normally kNV (the full NR columns); edge tiles use fewer vectors so no work is wasted on padding.
template <class T, int64_t NV = kNV>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc, T alpha, T beta) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, W = S::W, LINE = 64 / sizeof(T);
  // Ask for the C tile now so it arrives while the k loop runs.
  for (int64_t i = 0; i < MR; ++i)
    for (int64_t j = 0; j < NV * W; j += LINE) __builtin_prefetch(c + i * ldc + j, 1);

  V acc[MR][NV];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) acc[i][v] = S::zero();

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    // b streams in from L2: ask for the lines needed kPrefetch iterations from now (a is already in L1).
#pragma GCC unroll 4
    for (int64_t j = 0; j < NV * W; j += LINE) __builtin_prefetch(b + kPrefetch * NR + j, 0, 3);
    V bv[NV];
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) bv[v] = S::load(b + v * W);
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const V ai = S::set1(a[i]);
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const V va = S::set1(alpha), vb = S::set1(beta);
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) {
      T* p = c + i * ldc + v * W;
      S::store(p, beta == T(0) ? S::mul(va, acc[i][v]) : S::fma(vb, S::load(p), S::mul(va, acc[i][v])));
    }
}

// An edge tile (mb < MR rows or nb < NR columns of C left): run the narrowest kernel that covers nb columns
// into a scratch tile (the zero padding makes the extra rows and columns zero), then merge the valid part.
template <class T, int64_t NV = kNV>
void edge_tile(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mb, int64_t nb, T alpha, T beta) {
  constexpr int64_t MR = Blocking<T>::MR, W = Simd<T>::W;
  if constexpr (NV > 1) {
    if (nb <= (NV - 1) * W) return edge_tile<T, NV - 1>(kc, a, b, c, ldc, mb, nb, alpha, beta);
  }
  alignas(64) T tile[MR * NV * W];
  micro_kernel<T, NV>(kc, a, b, tile, NV * W, T(1), T(0));
  for (int64_t i = 0; i < mb; ++i)
    for (int64_t j = 0; j < nb; ++j) {
      const T r = alpha * tile[i * NV * W + j];
      c[i * ldc + j] = beta == T(0) ? r : r + beta * c[i * ldc + j];
    }
}

// C = beta * C, for K == 0 or alpha == 0 (BLAS semantics: op(A) and op(B) are then not read at all).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// ---- 5. The five loops, on one block of C. ----
template <class T>
struct Gemm {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
};

// C[m0:m1, n0:n1] of the product, on the calling thread. m0 and n0 are multiples of MR and NR, so the edge
// tiles are the same ones whichever way the threads split C (and the results are bit-identical).
template <class T>
void gemm_block(const Gemm<T>& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  using P = Blocking<T>;
  constexpr int64_t MR = P::MR, NR = P::NR;
  // Cut each dimension into equal blocks no larger than the maximum (K = 400 is 2 x 200, not 384 + 16).
  const int64_t kc = ceil_div(g.K, ceil_div(g.K, P::KC));
  const int64_t mc = round_up(ceil_div(m1 - m0, ceil_div(m1 - m0, P::MC)), MR);
  const int64_t nc = round_up(ceil_div(n1 - n0, ceil_div(n1 - n0, P::NC)), NR);
  T* Ap = static_cast<T*>(scratch(0, sizeof(T) * mc * kc));
  T* Bp = static_cast<T*>(scratch(1, sizeof(T) * kc * nc));

  for (int64_t ic = m0; ic < m1; ic += mc) {  // loop 5
    const int64_t mb = std::min(mc, m1 - ic);
    for (int64_t pc = 0; pc < g.K; pc += kc) {  // loop 4
      const int64_t kb = std::min(kc, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);  // later K blocks accumulate onto the first one
      pack<MR>(g.trans_a ? g.A + pc * g.lda + ic : g.A + ic * g.lda + pc, g.lda, !g.trans_a, kb, mb, Ap);
      for (int64_t jc = n0; jc < n1; jc += nc) {  // loop 3
        const int64_t nb = std::min(nc, n1 - jc);
        pack<NR>(g.trans_b ? g.B + jc * g.ldb + pc : g.B + pc * g.ldb + jc, g.ldb, g.trans_b, kb, nb, Bp);
        for (int64_t i = 0; i < mb; i += MR) {  // loop 2
          const T* a = Ap + i * kb;  // micro-panel i / MR starts at (i / MR) * MR * kb
          for (int64_t j = 0; j < nb; j += NR) {  // loop 1
            const T* b = Bp + j * kb;
            T* c = g.C + (ic + i) * g.ldc + jc + j;
            if (mb - i >= MR && nb - j >= NR)
              micro_kernel<T>(kb, a, b, c, g.ldc, g.alpha, beta);
            else
              edge_tile<T>(kb, a, b, c, g.ldc, std::min(MR, mb - i), std::min(NR, nb - j), g.alpha, beta);
          }
        }
      }
    }
  }
}

// ---- 6. Threads: each one computes its own block of C. ----
// C is cut into a grid of tm x tn blocks, one per thread. Each thread packs what it needs itself, so the
// threads share nothing but the read-only A and B and never wait for each other (no barriers: on a busy
// machine one descheduled thread would stall all the others at every barrier). The price is duplicated
// packing: a thread packs (M/tm) x K of A and K x (N/tn) of B, so the grid is chosen to minimise
// M/tm + N/tn: 2 threads split the longer side of C.
template <class T>
void gemm_parallel(const Gemm<T>& g) {
  const int64_t m_panels = ceil_div(g.M, Blocking<T>::MR), n_panels = ceil_div(g.N, Blocking<T>::NR);
  // A product below 64^3 multiply-adds takes a few microseconds: not worth waking other threads for.
  const int max_threads = double(g.M) * double(g.N) * double(g.K) < 64.0 * 64 * 64 ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(max_threads)
  {
    const int64_t nt = omp_get_num_threads();  // 1 when called from inside another parallel region
    int64_t tm = 1;
    double best = -1;
    for (int64_t d = 1; d <= nt; ++d) {
      if (nt % d || d > m_panels || nt / d > n_panels) continue;
      const double cost = double(g.M) / d + double(g.N) / (nt / d);
      if (best < 0 || cost <= best) best = cost, tm = d;  // (a tie goes to splitting M)
    }
    const int64_t tn = best < 0 ? 1 : nt / tm;  // (tiny C: fewer blocks than threads, some stay idle)
    const int64_t t = omp_get_thread_num();
    if (t < tm * tn) {
      const int64_t bi = t / tn, bj = t % tn;  // block (bi, bj): whole micro-panels, shared out evenly
      const int64_t m0 = m_panels * bi / tm * Blocking<T>::MR, m1 = m_panels * (bi + 1) / tm * Blocking<T>::MR;
      const int64_t n0 = n_panels * bj / tn * Blocking<T>::NR, n1 = n_panels * (bj + 1) / tn * Blocking<T>::NR;
      if (m0 < g.M && n0 < g.N) gemm_block(g, m0, std::min(m1, g.M), n0, std::min(n1, g.N));
    }
  }
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) return scale_c(M, N, beta, C, ldc);
  gemm_parallel(Gemm<T>{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc});
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k)
        sum += (trans_a ? A[k * lda + i] : A[i * lda + k]) * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * sum + (beta == 0 ? 0.0 : beta * C[i * ldc + j]);
    }
}

}  // namespace glance::cpu
