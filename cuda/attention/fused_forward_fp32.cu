// Rung 3 of the attention ladder: the fp32 forward pass on CUDA cores, with FlashAttention-2's structure.
// Same algorithm as the CPU rung (nn/attention/tiled_cpu.cpp, forward_block), one query tile per CTA:
//
//   grid  = (ceil(max_len / Br), H, B)       blockIdx = (query tile, head, clip)
//   block = 128 threads (4 warps)             Br = 64 query rows, Bc = 64 key rows (32 when d = 128)
//
//   CTA (tile t, head h, clip b):  rows q0 = t * Br .. q0 + Br of clip b (exits at once if q0 >= L_b)
//     Qs <- Q[q0 : q0 + Br]                   once; rows past the clip are zeros
//     m = -inf, l = 0, o = 0                   per query row, in registers
//     for k0 = 0, Bc, 2 Bc, ... < L_b:         K/V tiles streamed through shared memory
//       Ks, Vs <- K[k0 : k0 + Bc], V[...]      rows past the clip are zeros
//       S = Qs Ks^T * scale * log2(e)          [Br, Bc] in registers; columns >= L_b set to -inf
//       m' = max(m, rowmax S); P = exp2(S - m'); l = l exp2(m - m') + rowsum P; o = o exp2(m - m')
//       Ps <- P;  o += Ps Vs                   P goes through shared memory (a row is needed whole)
//     O = o / l;  LSE = (m + log2 l) * ln 2    rows < L_b only
//
// Work split (common.cuh): the threads form a 16 x 8 grid (ty, tx); thread (ty, tx) owns query rows
// ty + 16 i (i < 4) and, of S, the key columns tx + 8 j (j < Bc / 8); of o, the head-dim columns
// tx + 8 j (j < d / 8). Registers per thread: o 4 x d/8 (64 floats at d = 128), S 4 x Bc/8, m and l 4
// each. The 16 rows of a warp (4 values of ty) belong to that warp alone (FlashAttention-2's "split Q":
// warps never combine partial results), so the row max and sum are 8-lane shuffles and the P round trip
// through shared memory needs only __syncwarp.
//
// The softmax runs in base 2: log2(e) is folded into the scale once, so each probability costs one
// exp2f (one MUFU.EX2) and no multiply. LSE is stored in natural-log units, like the CPU rung's.
//
// Variable length (rung 5): clip b's tokens start at cu_seqlens[b]; every pointer is offset to the
// clip's first row, a tile never crosses into the next clip (loads stop at L_b and are zero-filled) and
// the scores of columns >= L_b are -inf, so they get probability exactly 0.
//
// Shared memory, floats: Qs Br x (d+1), Ks and Vs Bc x (d+1), Ps Br x (Bc+1) -- 42 KB at d = 32,
// 66.5 KB at d = 64, 74.5 KB at d = 128 (Bc = 32 there, to keep 2-3 CTAs per SM).
//
// What a faster rung would change (not done here, to keep this one readable): K stored transposed so a
// thread reads its 8 columns with two float4 loads, double-buffered cp.async loads of the next K/V tile
// while computing this one, a larger micro-tile (8 x 8) per thread, and TF32 tensor cores (rung F3).
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/attention/common.cuh"
#include "cuda/attention/launch.h"

namespace glance::cuda::attention::detail {

namespace {

template <int D>
struct ForwardFp32Config {
  static constexpr int kBr = 64;                 // query rows per CTA
  static constexpr int kBc = D == 128 ? 32 : 64;  // key rows per step
  static constexpr int kLd = padded(D);          // row stride of Qs, Ks, Vs
  static constexpr int kLdP = padded(kBc);       // row stride of Ps
  static constexpr int kTM = kBr / kTY;          // 4 query rows per thread
  static constexpr int kTN = kBc / kTX;          // S columns per thread
  static constexpr int kTD = D / kTX;            // o columns per thread
  static constexpr int kSmemFloats = kBr * kLd + 2 * kBc * kLd + kBr * kLdP;
  static constexpr int kSmemBytes = kSmemFloats * static_cast<int>(sizeof(float));
};

template <int D>
__global__ void __launch_bounds__(kThreads)
    forward_fp32_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                        float* __restrict__ out, float* __restrict__ lse, const int32_t* __restrict__ cu_seqlens,
                        int64_t total_tokens, float scale_log2) {
  using C = ForwardFp32Config<D>;
  const int h = blockIdx.y, b = blockIdx.z;
  const ClipRange clip = clip_range(cu_seqlens, b);
  const int q0 = blockIdx.x * C::kBr;
  if (q0 >= clip.len) return;  // the whole CTA leaves together, before any barrier

  // Element (token t of the clip, column e) of this head is at base + t * D + e.
  const int64_t row0 = static_cast<int64_t>(h) * total_tokens + clip.begin;  // the clip's first row in this head
  const int64_t base = row0 * D;

  extern __shared__ float smem[];
  float* Qs = smem;                   // [Br][kLd]
  float* Ks = Qs + C::kBr * C::kLd;   // [Bc][kLd]
  float* Vs = Ks + C::kBc * C::kLd;   // [Bc][kLd]
  float* Ps = Vs + C::kBc * C::kLd;   // [Br][kLdP]

  const int ty = threadIdx.x / kTX, tx = threadIdx.x % kTX;

  load_rows_f32<C::kBr, D, C::kLd>(Qs, q + base + static_cast<int64_t>(q0) * D, clip.len - q0);

  float o[C::kTM][C::kTD];
  zero(o);
  float m[C::kTM], l[C::kTM];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) m[i] = -INFINITY, l[i] = 0.f;

  for (int k0 = 0; k0 < clip.len; k0 += C::kBc) {
    __syncthreads();  // every warp is done reading the previous Ks, Vs (and Qs has been written, first time)
    load_rows_f32<C::kBc, D, C::kLd>(Ks, k + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    load_rows_f32<C::kBc, D, C::kLd>(Vs, v + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    __syncthreads();

    // S = Q K^T: A(i, e) = Q[row i][e], B(e, j) = K[col j][e].
    float s[C::kTM][C::kTN];
    zero(s);
    micro_gemm<C::kTM, C::kTN, D>(
        s, [&](int i, int e) { return Qs[(ty + kTY * i) * C::kLd + e]; },
        [&](int e, int j) { return Ks[(tx + kTX * j) * C::kLd + e]; });

    // Scale into log2 units; the columns past the clip get -inf (probability 0). Column k0 is always
    // inside the clip, so each row's maximum below is finite.
    const int valid_cols = clip.len - k0;
#pragma unroll
    for (int i = 0; i < C::kTM; ++i)
#pragma unroll
      for (int j = 0; j < C::kTN; ++j) s[i][j] = tx + kTX * j < valid_cols ? s[i][j] * scale_log2 : -INFINITY;

    // The online softmax, row by row (the 8 owners of a row combine through shuffles).
#pragma unroll
    for (int i = 0; i < C::kTM; ++i) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < C::kTN; ++j) tile_max = fmaxf(tile_max, s[i][j]);
      const float m_new = fmaxf(m[i], row_max8(tile_max));
      const float correction = exp2f(m[i] - m_new);  // exp2(-inf) = 0 on the first tile
      float tile_sum = 0.f;
#pragma unroll
      for (int j = 0; j < C::kTN; ++j) {
        s[i][j] = exp2f(s[i][j] - m_new);  // P~, unnormalised; exp2(-inf) = 0 for masked columns
        tile_sum += s[i][j];
      }
      l[i] = l[i] * correction + row_sum8(tile_sum);
      m[i] = m_new;
#pragma unroll
      for (int j = 0; j < C::kTD; ++j) o[i][j] *= correction;
    }

    // o += P V: P's rows belong to this warp, so a __syncwarp orders the writes before the reads.
#pragma unroll
    for (int i = 0; i < C::kTM; ++i)
#pragma unroll
      for (int j = 0; j < C::kTN; ++j) Ps[(ty + kTY * i) * C::kLdP + tx + kTX * j] = s[i][j];
    __syncwarp();
    micro_gemm<C::kTM, C::kTD, C::kBc>(
        o, [&](int i, int c) { return Ps[(ty + kTY * i) * C::kLdP + c]; },
        [&](int c, int j) { return Vs[c * C::kLd + tx + kTX * j]; });
  }

  // Normalise once at the end (FlashAttention-2) and write the rows that belong to the clip.
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    const int r = q0 + ty + kTY * i;
    if (r >= clip.len) continue;
    const float inv = 1.f / l[i];
#pragma unroll
    for (int j = 0; j < C::kTD; ++j) out[base + static_cast<int64_t>(r) * D + tx + kTX * j] = o[i][j] * inv;
    if (tx == 0) lse[row0 + r] = (m[i] + log2f(l[i])) * kLn2;
  }
}

template <int D>
void launch(const Problem& p, const float* q, const float* k, const float* v, float* out, float* lse) {
  using C = ForwardFp32Config<D>;
  const dim3 grid((p.max_len + C::kBr - 1) / C::kBr, p.heads, p.batch);
  set_smem_limit(reinterpret_cast<const void*>(&forward_fp32_kernel<D>), "forward_fp32", C::kSmemBytes);
  forward_fp32_kernel<D><<<grid, kThreads, C::kSmemBytes, p.stream>>>(q, k, v, out, lse, p.cu_seqlens,
                                                                      p.total_tokens, p.scale * kLog2e);
  check_launch("forward_fp32", D, grid, C::kSmemBytes, p.stream);
}

template <int D>
Tiles tiles_of() {
  using C = ForwardFp32Config<D>;
  return {C::kBr, C::kBc, kThreads, C::kSmemBytes};
}

}  // namespace

void launch_forward_fp32(const Problem& p, const float* q, const float* k, const float* v, float* out, float* lse) {
  switch (p.head_dim) {
    case 32: return launch<32>(p, q, k, v, out, lse);
    case 64: return launch<64>(p, q, k, v, out, lse);
    case 128: return launch<128>(p, q, k, v, out, lse);
  }
}

Tiles forward_fp32_tiles(int head_dim) {
  switch (head_dim) {
    case 32: return tiles_of<32>();
    case 64: return tiles_of<64>();
    case 128: return tiles_of<128>();
  }
  return {};
}

}  // namespace glance::cuda::attention::detail
