// Rung 6, backward: the bf16 / fp16 backward pass on tensor cores (WMMA 16x16x16, fp32 accumulators).
// The maths of rung 4 (fused_backward_fp32.cu); the loop structure of its kv_kernel with dQ by atomics:
//
//   preprocess_half_kernel:  D = rowsum(dO * O) in fp32 (one warp per row), and zeroes that row of the
//                            fp32 dQ accumulator
//   kv_half_kernel:          grid (ceil(max_len / 64), H, B), 128 threads = 4 warps; a CTA owns 64 key
//                            rows of one (clip, head), warp w the key rows 16 w .. 16 w + 16 of them
//     Ks, Vs <- K, V[k0 : k0 + 64]                         bf16/fp16, once
//     dk, dv: d/16 accumulator fragments per warp           [16, d] each, fp32, in registers (no rescaling
//                                                           is ever needed in the backward pass, so WMMA's
//                                                           opaque fragment layout is no obstacle here)
//     for each query tile q0 (64 rows):
//       Qs, dOs <- Q, dO[q0 : q0 + 64]; LSE (log2 units) and D of those rows
//       per warp, transposed so the warp's key rows are the M dimension:
//         S^T  = K_w Q^T   [16, 64]   (A = K rows, B(e, i) = Q[i][e]: a col_major fragment of Qs)
//         dP^T = V_w dO^T  [16, 64]
//       both stored to the warp's fp32 scratch; the lanes then form
//         P^T  = exp2(S^T * scale log2 e - LSE)     0 outside the clip
//         dS^T = P^T * (dP^T - D)
//       rounded to bf16/fp16: P^T into the warp's Pt, dS^T into the CTA's dSt [64 keys, 64 queries]
//       dv += P^T_w dO,  dk += dS^T_w Q            (the warp's own rows: a __syncwarp orders them)
//       __syncthreads: dSt complete
//       dQ share: warp w takes query rows 16 w ..: dS K with A(i, c) = dSt[c][i] (a col_major fragment),
//                 through the scratch, then fp32 atomicAdd (times scale) into the dQ accumulator
//     dK = dk scale, dV = dv, rounded to bf16/fp16      rows < L only
//   convert_dq_kernel:       dq = dQ accumulator rounded to bf16/fp16
//
// Roundings beyond rung 4's: P^T and dS^T to the 16-bit type before the products (as FlashAttention
// does); O, dO, Q, K, V are 16-bit inputs; dq, dk, dv 16-bit outputs. D, LSE, the softmax and every
// accumulation are fp32.
//
// Shared memory (bytes) at d = 64: Ks, Vs, Qs, dOs 4 x 9216, dSt 9216, LSE and D 512, per warp two fp32
// scratch tiles 2 x 4352 and Pt 2304 -> 90 KB. At d = 128: 123 KB.
//
// sm_80 or newer, like the forward. Not deterministic (the dQ atomics); no deterministic variant here.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/attention/half_common.cuh"
#include "cuda/attention/launch.h"

namespace glance::cuda::attention::detail {

namespace {

template <int D>
struct BackwardHalfConfig {
  static constexpr int kBr = 64, kBc = 64, kWarps = kThreads / 32;
  static constexpr int kLd = D + 8;    // elements: Ks, Vs, Qs, dOs rows
  static constexpr int kLdT = 64 + 8;  // elements: Pt, dSt rows ([key][query])
  static constexpr int kLdF = 64 + 4;  // floats: the scratch rows
  static constexpr int kTileBytes = round_up_128(64 * kLd * 2);
  static constexpr int kDsBytes = round_up_128(64 * kLdT * 2);
  static constexpr int kStatBytes = round_up_128(2 * 64 * 4);
  static constexpr int kScratchBytes = round_up_128(16 * kLdF * 4);  // per warp, two of them
  static constexpr int kPtBytes = round_up_128(16 * kLdT * 2);       // per warp
  static constexpr int kWarpBytes = 2 * kScratchBytes + kPtBytes;
  static constexpr int kSmemBytes = 4 * kTileBytes + kDsBytes + kStatBytes + kWarps * kWarpBytes;
  static_assert(kBr == 16 * kWarps && kBc == 16 * kWarps, "each warp owns 16 key rows and 16 query rows");
};

// D = rowsum(dO * O) in fp32, one warp per row of [H * N_total, d]; also zeroes the row of dq_accum.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    preprocess_half_kernel(const T* __restrict__ out, const T* __restrict__ dout, float* __restrict__ delta,
                           float* __restrict__ dq_accum, int64_t rows, int head_dim) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  float sum = 0.f;
  for (int e = lane; e < head_dim; e += 32) {
    sum = fmaf(HalfOps<T>::to_float(out[row * head_dim + e]), HalfOps<T>::to_float(dout[row * head_dim + e]), sum);
    dq_accum[row * head_dim + e] = 0.f;
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) delta[row] = sum;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    convert_dq_kernel(const float* __restrict__ dq_accum, T* __restrict__ dq, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    dq[i] = HalfOps<T>::from_float(dq_accum[i]);
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    kv_half_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                   const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                   float* __restrict__ dq_accum, T* __restrict__ dk, T* __restrict__ dv,
                   const int32_t* __restrict__ cu_seqlens, int64_t total_tokens, float scale, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // not built: the archs are sm_80 and sm_90, and the launcher refuses older devices
#else
  namespace wmma = nvcuda::wmma;
  using C = BackwardHalfConfig<D>;
  using FragAcc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using FragARow = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
  using FragACol = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major>;
  using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
  using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>;

  const int h = blockIdx.y, b = blockIdx.z;
  const ClipRange clip = clip_range(cu_seqlens, b);
  const int k0 = blockIdx.x * C::kBc;
  if (k0 >= clip.len) return;

  const int64_t row0 = static_cast<int64_t>(h) * total_tokens + clip.begin;
  const int64_t base = row0 * D;

  extern __shared__ __align__(128) unsigned char smem[];
  T* Ks = reinterpret_cast<T*>(smem);                          // [64][kLd]  this CTA's keys
  T* Vs = reinterpret_cast<T*>(smem + C::kTileBytes);          // [64][kLd]
  T* Qs = reinterpret_cast<T*>(smem + 2 * C::kTileBytes);      // [64][kLd]  the current query tile
  T* dOs = reinterpret_cast<T*>(smem + 3 * C::kTileBytes);     // [64][kLd]
  T* dSt = reinterpret_cast<T*>(smem + 4 * C::kTileBytes);     // [64 keys][kLdT]  dS^T of the tile pair
  float* Ls = reinterpret_cast<float*>(smem + 4 * C::kTileBytes + C::kDsBytes);  // [64] LSE * log2(e)
  float* Ds = Ls + 64;                                                            // [64] D
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  unsigned char* mine = smem + 4 * C::kTileBytes + C::kDsBytes + C::kStatBytes + warp * C::kWarpBytes;
  float* Sf = reinterpret_cast<float*>(mine);                           // [16][kLdF]  S^T, then P^T (fp32)
  float* dPf = reinterpret_cast<float*>(mine + C::kScratchBytes);       // [16][kLdF]  dP^T
  T* Pt = reinterpret_cast<T*>(mine + 2 * C::kScratchBytes);            // [16][kLdT]  P^T, rounded
  T* dSt_mine = dSt + warp * 16 * C::kLdT;                              // this warp's 16 rows of dSt

  // This lane's share of the elementwise work on a [16, 64] tile: row r, columns half, half + 2, ...
  const int r = lane / 2, half = lane % 2;
  const bool key_inside = k0 + warp * 16 + r < clip.len;

  load_rows_half<C::kBc, D, C::kLd>(Ks, k + base + static_cast<int64_t>(k0) * D, clip.len - k0);
  load_rows_half<C::kBc, D, C::kLd>(Vs, v + base + static_cast<int64_t>(k0) * D, clip.len - k0);

  FragAcc dk_acc[D / 16], dv_acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(dk_acc[n], 0.f), wmma::fill_fragment(dv_acc[n], 0.f);

  for (int q0 = 0; q0 < clip.len; q0 += C::kBr) {
    __syncthreads();  // the previous step is done with Qs, dOs, dSt, Ls, Ds (Ks, Vs written, first time)
    load_rows_half<C::kBr, D, C::kLd>(Qs, q + base + static_cast<int64_t>(q0) * D, clip.len - q0);
    load_rows_half<C::kBr, D, C::kLd>(dOs, dout + base + static_cast<int64_t>(q0) * D, clip.len - q0);
    for (int i = threadIdx.x; i < C::kBr; i += kThreads) {
      const bool inside = q0 + i < clip.len;
      Ls[i] = inside ? lse[row0 + q0 + i] * kLog2e : INFINITY;
      Ds[i] = inside ? delta[row0 + q0 + i] : 0.f;
    }
    __syncthreads();

    // S^T = K_w Q^T and dP^T = V_w dO^T for the warp's 16 key rows, 16 queries at a time. (Not unrolled:
    // with the dk and dv fragments live, d = 128 would run out of registers.)
#pragma unroll 1
    for (int n = 0; n < C::kBr / 16; ++n) {
      FragAcc s, dp;
      wmma::fill_fragment(s, 0.f);
      wmma::fill_fragment(dp, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        FragARow a;
        FragBCol bq;  // B(e, i) = Q[i][e]
        wmma::load_matrix_sync(a, Ks + warp * 16 * C::kLd + kk * 16, C::kLd);
        wmma::load_matrix_sync(bq, Qs + n * 16 * C::kLd + kk * 16, C::kLd);
        wmma::mma_sync(s, a, bq, s);
        wmma::load_matrix_sync(a, Vs + warp * 16 * C::kLd + kk * 16, C::kLd);
        wmma::load_matrix_sync(bq, dOs + n * 16 * C::kLd + kk * 16, C::kLd);
        wmma::mma_sync(dp, a, bq, dp);
      }
      wmma::store_matrix_sync(Sf + n * 16, s, C::kLdF, wmma::mem_row_major);
      wmma::store_matrix_sync(dPf + n * 16, dp, C::kLdF, wmma::mem_row_major);
    }
    __syncwarp();

    // P^T and dS^T in fp32, rounded into Pt and dSt. P = 0 outside the clip (rows or columns).
    for (int i = half; i < C::kBr; i += 2) {
      const bool inside = key_inside && q0 + i < clip.len;
      const float p = inside ? exp2f(Sf[r * C::kLdF + i] * scale_log2 - Ls[i]) : 0.f;
      const float ds = p * (dPf[r * C::kLdF + i] - Ds[i]);
      Pt[r * C::kLdT + i] = HalfOps<T>::from_float(p);
      dSt_mine[r * C::kLdT + i] = HalfOps<T>::from_float(ds);
    }
    __syncwarp();

    // dv += P^T_w dO and dk += dS^T_w Q, the query dimension inner (n unrolled: it indexes the
    // fragment arrays; kk not, to leave registers for them).
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
#pragma unroll 1
      for (int kk = 0; kk < C::kBr / 16; ++kk) {
        FragARow a;
        FragBRow bm;
        wmma::load_matrix_sync(a, Pt + kk * 16, C::kLdT);
        wmma::load_matrix_sync(bm, dOs + kk * 16 * C::kLd + n * 16, C::kLd);
        wmma::mma_sync(dv_acc[n], a, bm, dv_acc[n]);
        wmma::load_matrix_sync(a, dSt_mine + kk * 16, C::kLdT);
        wmma::load_matrix_sync(bm, Qs + kk * 16 * C::kLd + n * 16, C::kLd);
        wmma::mma_sync(dk_acc[n], a, bm, dk_acc[n]);
      }
    }
    __syncthreads();  // dSt holds all four warps' rows

    // This key tile's share of dQ for query rows q0 + 16 w ..: dS K, A(i, c) = dSt[c][i].
    if (q0 + warp * 16 < clip.len) {  // the same for the whole warp
#pragma unroll 1
      for (int n = 0; n < D / 16; ++n) {
        FragAcc acc;
        wmma::fill_fragment(acc, 0.f);
#pragma unroll
        for (int kk = 0; kk < C::kBc / 16; ++kk) {
          FragACol a;
          FragBRow bk;
          wmma::load_matrix_sync(a, dSt + kk * 16 * C::kLdT + warp * 16, C::kLdT);
          wmma::load_matrix_sync(bk, Ks + kk * 16 * C::kLd + n * 16, C::kLd);
          wmma::mma_sync(acc, a, bk, acc);
        }
        wmma::store_matrix_sync(Sf, acc, C::kLdF, wmma::mem_row_major);
        __syncwarp();
        for (int idx = lane; idx < 256; idx += 32) {
          const int i = idx / 16, e = idx % 16, row = q0 + warp * 16 + i;
          if (row < clip.len) atomicAdd(dq_accum + base + static_cast<int64_t>(row) * D + n * 16 + e, Sf[i * C::kLdF + e] * scale);
        }
        __syncwarp();  // read before the next store overwrites Sf
      }
    }
  }

  // dK = dk * scale, dV = dv, through the scratch, rounded; rows past the clip are not written.
  // (Unrolled: dk_acc[n] with a run-time n would move the fragments to local memory.)
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::store_matrix_sync(Sf, dk_acc[n], C::kLdF, wmma::mem_row_major);
    wmma::store_matrix_sync(dPf, dv_acc[n], C::kLdF, wmma::mem_row_major);
    __syncwarp();
    for (int idx = lane; idx < 256; idx += 32) {
      const int i = idx / 16, e = idx % 16, row = k0 + warp * 16 + i;
      if (row >= clip.len) continue;
      const int64_t at = base + static_cast<int64_t>(row) * D + n * 16 + e;
      dk[at] = HalfOps<T>::from_float(Sf[i * C::kLdF + e] * scale);
      dv[at] = HalfOps<T>::from_float(dPf[i * C::kLdF + e]);
    }
    __syncwarp();
  }
#endif
}

template <typename T, int D>
void launch_kv(const Problem& p, const void* q, const void* k, const void* v, const float* lse, const void* dout,
               const float* delta, float* dq_accum, void* dk, void* dv, const char* name) {
  using C = BackwardHalfConfig<D>;
  const dim3 grid((p.max_len + C::kBc - 1) / C::kBc, p.heads, p.batch);
  set_smem_limit(reinterpret_cast<const void*>(&kv_half_kernel<T, D>), name, C::kSmemBytes);
  kv_half_kernel<T, D><<<grid, kThreads, C::kSmemBytes, p.stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<const T*>(dout), lse,
      delta, dq_accum, static_cast<T*>(dk), static_cast<T*>(dv), p.cu_seqlens, p.total_tokens, p.scale,
      p.scale * kLog2e);
  check_launch(name, D, grid, C::kSmemBytes, p.stream);
}

template <typename T>
void launch_type(const Problem& p, const void* q, const void* k, const void* v, const void* out, const float* lse,
                 const void* dout, void* dq, void* dk, void* dv, float* delta, float* dq_accum, const char* name) {
  const int64_t rows = static_cast<int64_t>(p.heads) * p.total_tokens;
  const dim3 pre_grid(static_cast<unsigned>((rows + kThreads / 32 - 1) / (kThreads / 32)));
  preprocess_half_kernel<T><<<pre_grid, kThreads, 0, p.stream>>>(static_cast<const T*>(out), static_cast<const T*>(dout),
                                                                delta, dq_accum, rows, p.head_dim);
  check_launch("backward_half_preprocess", p.head_dim, pre_grid, 0, p.stream);
  switch (p.head_dim) {
    case 32: launch_kv<T, 32>(p, q, k, v, lse, dout, delta, dq_accum, dk, dv, name); break;
    case 64: launch_kv<T, 64>(p, q, k, v, lse, dout, delta, dq_accum, dk, dv, name); break;
    case 128: launch_kv<T, 128>(p, q, k, v, lse, dout, delta, dq_accum, dk, dv, name); break;
  }
  if (dq == nullptr) return;  // the caller takes dQ in fp32 from dq_accum
  const int64_t n = rows * p.head_dim;
  const dim3 convert_grid(static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)));
  convert_dq_kernel<T><<<convert_grid, kThreads, 0, p.stream>>>(dq_accum, static_cast<T*>(dq), n);
  check_launch("backward_half_convert_dq", p.head_dim, convert_grid, 0, p.stream);
}

}  // namespace

void launch_backward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v,
                          const void* out, const float* lse, const void* dout, void* dq, void* dk, void* dv,
                          float* delta, float* dq_accum) {
  int device = 0, major = 0;
  check_call(cudaGetDevice(&device), "backward_half: cudaGetDevice");
  check_call(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
             "backward_half: cudaDeviceGetAttribute");
  if (major < 8) {
    throw std::runtime_error("backward_half: bf16/fp16 WMMA attention needs compute capability 8.0 or newer; device " +
                             std::to_string(device) + " has " + std::to_string(major) + ".x");
  }
  if (type == HalfType::BFloat16) {
    launch_type<__nv_bfloat16>(p, q, k, v, out, lse, dout, dq, dk, dv, delta, dq_accum, "backward_bf16");
  } else {
    launch_type<__half>(p, q, k, v, out, lse, dout, dq, dk, dv, delta, dq_accum, "backward_fp16");
  }
}

Tiles backward_half_tiles(int head_dim) {
  switch (head_dim) {
    case 32: return {64, 64, kThreads, BackwardHalfConfig<32>::kSmemBytes};
    case 64: return {64, 64, kThreads, BackwardHalfConfig<64>::kSmemBytes};
    case 128: return {64, 64, kThreads, BackwardHalfConfig<128>::kSmemBytes};
  }
  return {};
}

}  // namespace glance::cuda::attention::detail
