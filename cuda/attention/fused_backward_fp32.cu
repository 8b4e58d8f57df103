// Rung 4 of the attention ladder: the fp32 backward pass, FlashAttention-2's algorithm, the same maths
// as the CPU rung (nn/attention/tiled_cpu.cpp, backward_one). Given O and LSE from the forward pass and
// dO = dL/dO, with P = exp(S - LSE) recomputed tile by tile (never stored):
//
//   dV = P^T dO      dP = dO V^T      dS = P * (dP - D),  D = rowsum(dO * O)      dQ = dS K s      dK = dS^T Q s
//
// (s = scale; D is rowsum(dP * P), which equals rowsum(dO * O) because O = P V.) Three kernels:
//
// 1. preprocess_kernel: D[h, t] = sum_e dO[h, t, e] O[h, t, e]. One warp per row, grid over all H*N rows.
//
// 2. kv_kernel<D, kAtomicDQ>: one CTA per (key tile, head, clip), the "outer loop over K/V" of FA2:
//      grid  = (ceil(max_len / Bc), H, B),  128 threads;  Br = Bc = 64 (32 when d = 128)
//      Ks, Vs <- K, V[k0 : k0 + Bc]                     once, zero rows past the clip
//      dk = dv = 0                                       [Bc, d] each, in registers
//      for q0 = 0, Br, ... < L_b:                        query tiles streamed through shared memory
//        Qs, dOs <- Q, dO[q0 : q0 + Br];  LSE, D of those rows
//        S = Qs Ks^T;  P = exp2(S s log2e - LSE log2e)  [Br, Bc]; 0 outside the clip (rows or columns)
//        dP = dOs Vs^T;  dS = P * (dP - D)              [Br, Bc]
//        Ps, dSs <- P, dS                               shared: the next products need them transposed
//        dv += Ps^T dOs;  dk += dSs^T Qs                 [Bc, d]
//        if kAtomicDQ: dQ[q0 : q0 + Br] += (dSs Ks) s   atomicAdd into global fp32 (zeroed first)
//      dK = dk s, dV = dv                                rows < L_b
//    Thread (ty, tx) (common.cuh) owns, of the [Br, Bc] blocks S, P, dP, dS: rows ty + 16 i, columns
//    tx + 8 j; of dk, dv ([Bc, d]): key rows ty + 16 i, columns tx + 8 j; of the dQ share ([Br, d]):
//    query rows ty + 16 i, columns tx + 8 j. P and dS go through shared memory with a __syncthreads
//    because dv and dk need them by columns (transposed), and a column is spread over all four warps.
//    Registers at d = 64: dk and dv 32 floats each, S and dP 32 each, the dQ share 32.
//
// 3. dq_kernel<D>: the deterministic alternative for dQ (no atomics), one CTA per (query tile, head, clip)
//    like the forward pass, looping over the key tiles in order:
//      Qs, dOs, LSE, D of the tile; dq = 0 ([Br, d] registers)
//      for k0: Ks, Vs <- K, V[k0 : k0 + Bc];  S, P, dP, dS as above;  dSs <- dS (this warp's rows: a
//              __syncwarp suffices);  dq += dSs Ks
//      dQ = dq s
//    With it, kv_kernel<D, false> skips the dQ product: 3 + 4 = 7 matmuls per tile pair instead of 5,
//    and the same bits on every run.
//
// Variable length (rung 5): as in the forward pass, each CTA offsets its pointers to its clip, exits when
// its tile starts past the clip, and zero-fills the rows past the clip. P is also set to 0 explicitly
// outside the clip: a zero key row has score 0 and exp(0 - LSE) is not 0. Every product would cancel
// such a P anyway (it meets a zero K, V, Q or dO row, or lands in a row that is never written), but the
// explicit mask keeps inf and NaN out (0 * inf = NaN) and keeps the tiles meaningful in a debugger.
//
// Shared memory, floats: Ks, Vs Bc x (d+1); Qs, dOs Br x (d+1); Ps, dSs Br x (Bc+1); LSE, D Br each --
// 67 KB at d = 32, 100 KB at d = 64, 75 KB at d = 128 (kv_kernel); the dq kernel needs no Ps.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/attention/common.cuh"
#include "cuda/attention/launch.h"

namespace glance::cuda::attention::detail {

namespace {

template <int D>
struct BackwardConfig {
  static constexpr int kBr = D == 128 ? 32 : 64;  // query rows per step (kv_kernel) or per CTA (dq_kernel)
  static constexpr int kBc = D == 128 ? 32 : 64;  // key rows per CTA (kv_kernel) or per step (dq_kernel)
  static constexpr int kLd = padded(D);
  static constexpr int kLdS = padded(kBc);  // row stride of Ps and dSs ([Br][Bc])
  static constexpr int kTQ = kBr / kTY;     // query rows per thread
  static constexpr int kTK = kBc / kTY;     // key rows per thread (of dk, dv)
  static constexpr int kTC = kBc / kTX;     // key columns per thread (of S, P, dP, dS)
  static constexpr int kTD = D / kTX;       // head-dim columns per thread (of dk, dv, dq)
  static constexpr int kKvSmemFloats = 2 * kBc * kLd + 2 * kBr * kLd + 2 * kBr * kLdS + 2 * kBr;
  static constexpr int kDqSmemFloats = 2 * kBc * kLd + 2 * kBr * kLd + kBr * kLdS + 2 * kBr;
  static constexpr int kKvSmemBytes = kKvSmemFloats * static_cast<int>(sizeof(float));
  static constexpr int kDqSmemBytes = kDqSmemFloats * static_cast<int>(sizeof(float));
};

// ---- 1. D = rowsum(dO * O) ------------------------------------------------------------------------
// One warp per row of the [H * N_total, d] matrices; lanes stride over the row, then a warp sum.
__global__ void __launch_bounds__(kThreads)
    preprocess_kernel(const float* __restrict__ out, const float* __restrict__ dout, float* __restrict__ delta,
                      int64_t rows, int head_dim) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const float* o = out + row * head_dim;
  const float* g = dout + row * head_dim;
  float sum = 0.f;
  for (int e = lane; e < head_dim; e += 32) sum = fmaf(o[e], g[e], sum);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) delta[row] = sum;
}

// Loads the LSE (in log2 units) and D of query rows [q0, q0 + Br) of the clip; rows past the clip get
// LSE = +inf (so exp2(S - LSE) would be 0; they are also masked explicitly) and D = 0.
template <int BR>
__device__ __forceinline__ void load_row_stats(float* __restrict__ Ls, float* __restrict__ Ds,
                                               const float* __restrict__ lse, const float* __restrict__ delta,
                                               int64_t row0, int q0, int len) {
  for (int r = threadIdx.x; r < BR; r += kThreads) {
    const bool inside = q0 + r < len;
    Ls[r] = inside ? lse[row0 + q0 + r] * kLog2e : INFINITY;
    Ds[r] = inside ? delta[row0 + q0 + r] : 0.f;
  }
}

// S, P and dS for one (query tile, key tile) pair, in this thread's [TQ, TC] micro-tile:
//   p  <- P  = exp2(S * scale_log2 - LSE_log2), 0 outside the clip
//   ds <- dS = P * (dP - D)
// Qs, dOs: [Br][kLd] (query rows), Ks, Vs: [Bc][kLd] (key rows), Ls, Ds: [Br].
template <int D, int TQ, int TC>
__device__ __forceinline__ void scores_and_grads(float (&p)[TQ][TC], float (&ds)[TQ][TC], const float* Qs,
                                                 const float* dOs, const float* Ks, const float* Vs,
                                                 const float* Ls, const float* Ds, int ty, int tx,
                                                 int valid_rows, int valid_cols, float scale_log2) {
  constexpr int kLd = padded(D);
  zero(p);
  micro_gemm<TQ, TC, D>(
      p, [&](int i, int e) { return Qs[(ty + kTY * i) * kLd + e]; },
      [&](int e, int j) { return Ks[(tx + kTX * j) * kLd + e]; });
#pragma unroll
  for (int i = 0; i < TQ; ++i) {
    const int r = ty + kTY * i;
    const float lse_log2 = Ls[r];
#pragma unroll
    for (int j = 0; j < TC; ++j) {
      const bool inside = r < valid_rows && tx + kTX * j < valid_cols;
      p[i][j] = inside ? exp2f(p[i][j] * scale_log2 - lse_log2) : 0.f;
    }
  }
  zero(ds);  // dP = dO V^T first, then dS in place
  micro_gemm<TQ, TC, D>(
      ds, [&](int i, int e) { return dOs[(ty + kTY * i) * kLd + e]; },
      [&](int e, int j) { return Vs[(tx + kTX * j) * kLd + e]; });
#pragma unroll
  for (int i = 0; i < TQ; ++i) {
    const float d_row = Ds[ty + kTY * i];
#pragma unroll
    for (int j = 0; j < TC; ++j) ds[i][j] = p[i][j] * (ds[i][j] - d_row);
  }
}

// ---- 2. dK, dV per key tile (and dQ by atomics) ---------------------------------------------------
template <int D, bool kAtomicDQ>
__global__ void __launch_bounds__(kThreads)
    kv_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
              const float* __restrict__ lse, const float* __restrict__ delta, const float* __restrict__ dout,
              float* __restrict__ dq, float* __restrict__ dk, float* __restrict__ dv,
              const int32_t* __restrict__ cu_seqlens, int64_t total_tokens, float scale, float scale_log2) {
  using C = BackwardConfig<D>;
  const int h = blockIdx.y, b = blockIdx.z;
  const ClipRange clip = clip_range(cu_seqlens, b);
  const int k0 = blockIdx.x * C::kBc;
  if (k0 >= clip.len) return;

  const int64_t row0 = static_cast<int64_t>(h) * total_tokens + clip.begin;
  const int64_t base = row0 * D;

  extern __shared__ float smem[];
  float* Ks = smem;                    // [Bc][kLd]
  float* Vs = Ks + C::kBc * C::kLd;    // [Bc][kLd]
  float* Qs = Vs + C::kBc * C::kLd;    // [Br][kLd]
  float* dOs = Qs + C::kBr * C::kLd;   // [Br][kLd]
  float* Ps = dOs + C::kBr * C::kLd;   // [Br][kLdS]
  float* dSs = Ps + C::kBr * C::kLdS;  // [Br][kLdS]
  float* Ls = dSs + C::kBr * C::kLdS;  // [Br]  LSE * log2(e)
  float* Ds = Ls + C::kBr;             // [Br]  D

  const int ty = threadIdx.x / kTX, tx = threadIdx.x % kTX;
  const int valid_cols = clip.len - k0;

  load_rows_f32<C::kBc, D, C::kLd>(Ks, k + base + static_cast<int64_t>(k0) * D, valid_cols);
  load_rows_f32<C::kBc, D, C::kLd>(Vs, v + base + static_cast<int64_t>(k0) * D, valid_cols);

  float dk_acc[C::kTK][C::kTD], dv_acc[C::kTK][C::kTD];
  zero(dk_acc);
  zero(dv_acc);

  for (int q0 = 0; q0 < clip.len; q0 += C::kBr) {
    __syncthreads();  // the previous step's reads of Qs, dOs, Ps, dSs are done (Ks, Vs written, first time)
    load_rows_f32<C::kBr, D, C::kLd>(Qs, q + base + static_cast<int64_t>(q0) * D, clip.len - q0);
    load_rows_f32<C::kBr, D, C::kLd>(dOs, dout + base + static_cast<int64_t>(q0) * D, clip.len - q0);
    load_row_stats<C::kBr>(Ls, Ds, lse, delta, row0, q0, clip.len);
    __syncthreads();

    float p[C::kTQ][C::kTC], ds[C::kTQ][C::kTC];
    scores_and_grads<D>(p, ds, Qs, dOs, Ks, Vs, Ls, Ds, ty, tx, clip.len - q0, valid_cols, scale_log2);
#pragma unroll
    for (int i = 0; i < C::kTQ; ++i)
#pragma unroll
      for (int j = 0; j < C::kTC; ++j) {
        const int at = (ty + kTY * i) * C::kLdS + tx + kTX * j;
        Ps[at] = p[i][j];
        dSs[at] = ds[i][j];
      }
    __syncthreads();  // dv and dk read P and dS by columns, written by all four warps

    // dv += P^T dO: A(i, r) = P[r][key row i], B(r, j) = dO[r][col j].
    micro_gemm<C::kTK, C::kTD, C::kBr>(
        dv_acc, [&](int i, int r) { return Ps[r * C::kLdS + ty + kTY * i]; },
        [&](int r, int j) { return dOs[r * C::kLd + tx + kTX * j]; });
    // dk += dS^T Q (times scale at the end).
    micro_gemm<C::kTK, C::kTD, C::kBr>(
        dk_acc, [&](int i, int r) { return dSs[r * C::kLdS + ty + kTY * i]; },
        [&](int r, int j) { return Qs[r * C::kLd + tx + kTX * j]; });

    if constexpr (kAtomicDQ) {
      // This key tile's share of dQ for the query tile: dS K, added into the fp32 dq buffer. Each dq
      // element receives one atomicAdd per key tile of its clip, in no fixed order.
      float dq_part[C::kTQ][C::kTD];
      zero(dq_part);
      micro_gemm<C::kTQ, C::kTD, C::kBc>(
          dq_part, [&](int i, int c) { return dSs[(ty + kTY * i) * C::kLdS + c]; },
          [&](int c, int j) { return Ks[c * C::kLd + tx + kTX * j]; });
#pragma unroll
      for (int i = 0; i < C::kTQ; ++i) {
        const int r = q0 + ty + kTY * i;
        if (r >= clip.len) continue;
#pragma unroll
        for (int j = 0; j < C::kTD; ++j) atomicAdd(dq + base + static_cast<int64_t>(r) * D + tx + kTX * j, dq_part[i][j] * scale);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < C::kTK; ++i) {
    const int r = k0 + ty + kTY * i;
    if (r >= clip.len) continue;
#pragma unroll
    for (int j = 0; j < C::kTD; ++j) {
      const int64_t at = base + static_cast<int64_t>(r) * D + tx + kTX * j;
      dk[at] = dk_acc[i][j] * scale;
      dv[at] = dv_acc[i][j];
    }
  }
}

// ---- 3. dQ per query tile, deterministic ----------------------------------------------------------
template <int D>
__global__ void __launch_bounds__(kThreads)
    dq_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
              const float* __restrict__ lse, const float* __restrict__ delta, const float* __restrict__ dout,
              float* __restrict__ dq, const int32_t* __restrict__ cu_seqlens, int64_t total_tokens, float scale,
              float scale_log2) {
  using C = BackwardConfig<D>;
  const int h = blockIdx.y, b = blockIdx.z;
  const ClipRange clip = clip_range(cu_seqlens, b);
  const int q0 = blockIdx.x * C::kBr;
  if (q0 >= clip.len) return;

  const int64_t row0 = static_cast<int64_t>(h) * total_tokens + clip.begin;
  const int64_t base = row0 * D;

  extern __shared__ float smem[];
  float* Ks = smem;                    // [Bc][kLd]
  float* Vs = Ks + C::kBc * C::kLd;    // [Bc][kLd]
  float* Qs = Vs + C::kBc * C::kLd;    // [Br][kLd]
  float* dOs = Qs + C::kBr * C::kLd;   // [Br][kLd]
  float* dSs = dOs + C::kBr * C::kLd;  // [Br][kLdS]
  float* Ls = dSs + C::kBr * C::kLdS;  // [Br]
  float* Ds = Ls + C::kBr;             // [Br]

  const int ty = threadIdx.x / kTX, tx = threadIdx.x % kTX;
  const int valid_rows = clip.len - q0;

  load_rows_f32<C::kBr, D, C::kLd>(Qs, q + base + static_cast<int64_t>(q0) * D, valid_rows);
  load_rows_f32<C::kBr, D, C::kLd>(dOs, dout + base + static_cast<int64_t>(q0) * D, valid_rows);
  load_row_stats<C::kBr>(Ls, Ds, lse, delta, row0, q0, clip.len);

  float dq_acc[C::kTQ][C::kTD];
  zero(dq_acc);

  for (int k0 = 0; k0 < clip.len; k0 += C::kBc) {
    __syncthreads();  // the previous step's reads of Ks (and Vs) are done; Qs, dOs, Ls, Ds written, first time
    load_rows_f32<C::kBc, D, C::kLd>(Ks, k + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    load_rows_f32<C::kBc, D, C::kLd>(Vs, v + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    __syncthreads();

    float p[C::kTQ][C::kTC], ds[C::kTQ][C::kTC];
    scores_and_grads<D>(p, ds, Qs, dOs, Ks, Vs, Ls, Ds, ty, tx, valid_rows, clip.len - k0, scale_log2);
    // dS rows belong to this warp: written and read back by the same 8 lanes per row.
#pragma unroll
    for (int i = 0; i < C::kTQ; ++i)
#pragma unroll
      for (int j = 0; j < C::kTC; ++j) dSs[(ty + kTY * i) * C::kLdS + tx + kTX * j] = ds[i][j];
    __syncwarp();
    micro_gemm<C::kTQ, C::kTD, C::kBc>(
        dq_acc, [&](int i, int c) { return dSs[(ty + kTY * i) * C::kLdS + c]; },
        [&](int c, int j) { return Ks[c * C::kLd + tx + kTX * j]; });
    // (The next step's dSs writes come after its __syncthreads and its S, dP products.)
  }

#pragma unroll
  for (int i = 0; i < C::kTQ; ++i) {
    const int r = q0 + ty + kTY * i;
    if (r >= clip.len) continue;
#pragma unroll
    for (int j = 0; j < C::kTD; ++j) dq[base + static_cast<int64_t>(r) * D + tx + kTX * j] = dq_acc[i][j] * scale;
  }
}

template <int D>
void launch(const Problem& p, const float* q, const float* k, const float* v, const float* lse, const float* dout,
            float* dq, float* dk, float* dv, const float* delta, bool deterministic) {
  using C = BackwardConfig<D>;
  const float scale_log2 = p.scale * kLog2e;
  const dim3 kv_grid((p.max_len + C::kBc - 1) / C::kBc, p.heads, p.batch);
  if (deterministic) {
    set_smem_limit(reinterpret_cast<const void*>(&kv_kernel<D, false>), "backward_kv", C::kKvSmemBytes);
    kv_kernel<D, false><<<kv_grid, kThreads, C::kKvSmemBytes, p.stream>>>(
        q, k, v, lse, delta, dout, dq, dk, dv, p.cu_seqlens, p.total_tokens, p.scale, scale_log2);
    check_launch("backward_kv", D, kv_grid, C::kKvSmemBytes, p.stream);
    const dim3 dq_grid((p.max_len + C::kBr - 1) / C::kBr, p.heads, p.batch);
    set_smem_limit(reinterpret_cast<const void*>(&dq_kernel<D>), "backward_dq", C::kDqSmemBytes);
    dq_kernel<D><<<dq_grid, kThreads, C::kDqSmemBytes, p.stream>>>(q, k, v, lse, delta, dout, dq, p.cu_seqlens,
                                                                   p.total_tokens, p.scale, scale_log2);
    check_launch("backward_dq", D, dq_grid, C::kDqSmemBytes, p.stream);
  } else {
    set_smem_limit(reinterpret_cast<const void*>(&kv_kernel<D, true>), "backward_kv_atomic_dq", C::kKvSmemBytes);
    kv_kernel<D, true><<<kv_grid, kThreads, C::kKvSmemBytes, p.stream>>>(
        q, k, v, lse, delta, dout, dq, dk, dv, p.cu_seqlens, p.total_tokens, p.scale, scale_log2);
    check_launch("backward_kv_atomic_dq", D, kv_grid, C::kKvSmemBytes, p.stream);
  }
}

}  // namespace

void launch_backward_fp32(const Problem& p, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* dq, float* dk, float* dv, float* delta,
                          bool deterministic) {
  // 1. D = rowsum(dO * O) for every row of every head (4 rows per 128-thread block).
  const int64_t rows = static_cast<int64_t>(p.heads) * p.total_tokens;
  const int rows_per_block = kThreads / 32;
  const dim3 grid(static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block));
  preprocess_kernel<<<grid, kThreads, 0, p.stream>>>(out, dout, delta, rows, p.head_dim);
  check_launch("backward_preprocess", p.head_dim, grid, 0, p.stream);
  // 2. The atomic path adds into dq: it must start at zero. (The deterministic path writes every row.)
  if (!deterministic) {
    check_call(cudaMemsetAsync(dq, 0, static_cast<size_t>(rows) * p.head_dim * sizeof(float), p.stream),
               "backward: zeroing dq (cudaMemsetAsync)");
  }
  switch (p.head_dim) {
    case 32: return launch<32>(p, q, k, v, lse, dout, dq, dk, dv, delta, deterministic);
    case 64: return launch<64>(p, q, k, v, lse, dout, dq, dk, dv, delta, deterministic);
    case 128: return launch<128>(p, q, k, v, lse, dout, dq, dk, dv, delta, deterministic);
  }
}

Tiles backward_kv_tiles(int head_dim) {
  switch (head_dim) {
    case 32: return {BackwardConfig<32>::kBr, BackwardConfig<32>::kBc, kThreads, BackwardConfig<32>::kKvSmemBytes};
    case 64: return {BackwardConfig<64>::kBr, BackwardConfig<64>::kBc, kThreads, BackwardConfig<64>::kKvSmemBytes};
    case 128: return {BackwardConfig<128>::kBr, BackwardConfig<128>::kBc, kThreads, BackwardConfig<128>::kKvSmemBytes};
  }
  return {};
}

Tiles backward_dq_tiles(int head_dim) {
  switch (head_dim) {
    case 32: return {BackwardConfig<32>::kBr, BackwardConfig<32>::kBc, kThreads, BackwardConfig<32>::kDqSmemBytes};
    case 64: return {BackwardConfig<64>::kBr, BackwardConfig<64>::kBc, kThreads, BackwardConfig<64>::kDqSmemBytes};
    case 128: return {BackwardConfig<128>::kBr, BackwardConfig<128>::kBc, kThreads, BackwardConfig<128>::kDqSmemBytes};
  }
  return {};
}

}  // namespace glance::cuda::attention::detail
