// WMMA on the CPU: each lane's fragment holds the whole 16 x 16 tile (the real layout is opaque anyway);
// loads read it all, stores write a 1/32 share per lane (so a missing __syncwarp after a store shows).
#pragma once
#include "sim.h"

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  float v[16][16];
  static constexpr int num_elements = 8;
};

inline void check(const void* p, unsigned ldm, size_t elem) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) sim::fail("wmma: pointer not 256-bit aligned");
  if ((ldm * elem) % 16 != 0) sim::fail("wmma: ldm not a multiple of 16 bytes");
}

template <typename T>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, row_major>& f, const T* p, unsigned ldm) {
  check(p, ldm, sizeof(T));
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) f.v[i][k] = sim::to_f(p[i * ldm + k]);
}
template <typename T>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, col_major>& f, const T* p, unsigned ldm) {
  check(p, ldm, sizeof(T));
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) f.v[i][k] = sim::to_f(p[i + k * ldm]);
}
template <typename T>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, col_major>& f, const T* p, unsigned ldm) {
  check(p, ldm, sizeof(T));
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 16; ++n) f.v[k][n] = sim::to_f(p[k + n * ldm]);
}
template <typename T>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, row_major>& f, const T* p, unsigned ldm) {
  check(p, ldm, sizeof(T));
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 16; ++n) f.v[k][n] = sim::to_f(p[k * ldm + n]);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
  check(p, ldm, 4);
  if (l != mem_row_major) sim::fail("wmma: only mem_row_major is emulated");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.v[i][j] = p[i * ldm + j];
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  check(p, ldm, 4);
  if (l != mem_row_major) sim::fail("wmma: only mem_row_major is emulated");
  for (int idx = sim::lane(); idx < 256; idx += 32) p[(idx / 16) * ldm + idx % 16] = f.v[idx / 16][idx % 16];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float x) {
  for (auto& row : f.v)
    for (float& e : row) e = x;
}
template <typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
              const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  // d[i][j] = c[i][j] + sum_k a[i][k] b[k][j], k ascending for every (i, j) (a fused multiply-add per step,
  // as the compiler contracts it): a row of 16 floats at a time, since this is most of the emulation's time.
  typedef float row16 __attribute__((vector_size(64)));
  for (int i = 0; i < 16; ++i) {
    row16 t;
    std::memcpy(&t, c.v[i], sizeof t);
    for (int k = 0; k < 16; ++k) {
      row16 bk;
      std::memcpy(&bk, b.v[k], sizeof bk);
      t += a.v[i][k] * bk;
    }
    std::memcpy(d.v[i], &t, sizeof t);
  }
}
}  // namespace nvcuda::wmma
