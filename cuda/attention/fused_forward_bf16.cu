// Rung 6 of the attention ladder: the forward pass for bf16 and fp16 inputs on tensor cores (rung T1 of
// docs/09: WMMA, the scores round-tripped through shared memory). The algorithm is rung 3's (online
// softmax, FlashAttention-2 split-Q, one query tile per CTA); what changes is who does the two products:
//
//   grid  = (ceil(max_len / 64), H, B)     blockIdx = (query tile, head, clip), exits when past the clip
//   block = 128 threads = 4 warps          warp w owns query rows q0 + 16 w .. q0 + 16 w + 16
//
//   Q:  staged through shared memory once, then held by each warp as d/16 WMMA A fragments (16 x 16)
//   for each key tile of Bc = 64 rows:     Ks, Vs [64][d + 8] bf16/fp16 in shared memory
//     S  = Q K^T       per warp 16 x 64: 4 accumulator fragments (fp32), each d/16 mma_sync steps with
//                      K read as a col_major B fragment (B(e, c) = K[c][e]); stored to the warp's Ss
//     softmax, fp32    on Ss: lane = 2 * row + half, the lane takes columns half, half + 2, ...; running
//                      m and l per row (kept by both lanes of the row), exp2f with log2(e) in the scale;
//                      P rounded to bf16/fp16 into the warp's Ps; the row sum uses the fp32 values
//     O  = O * corr + P V   O is fp32 in the warp's Os [16][d + 4]: each lane rescales its half of its
//                      row, then per 16 output columns: load the accumulator fragment from Os, 4 mma_sync
//                      steps (P as A from Ps, V as a row_major B from Vs), store it back
//   O / l converted to bf16/fp16; LSE = (m + log2 l) ln 2 in fp32
//
// Why O lives in shared memory: a WMMA accumulator fragment's element-to-(row, column) mapping is not
// specified, so a row cannot be rescaled in registers. Rung T2 (mma.sync m16n8k16, whose fragment layout
// is documented) keeps O and P in registers, loads with ldmatrix and cp.async, and is the next step.
//
// Accuracy: both products accumulate in fp32 and the softmax is fp32; the one extra rounding compared to
// rung 3 is P to bf16 (8 significant bits) or fp16 (11) before P V, as in FlashAttention.
//
// Variable length (rung 5): as in rung 3. K and V rows past the clip are zero-filled, their columns get
// probability 0 (they are skipped in the max and written as 0 in Ps).
//
// Shared memory (bytes) at d = 64: Ks, Vs 2 x 64 x 72 x 2 = 18 KB; per warp Ss 16 x 68 x 4, Ps 16 x 72 x 2,
// Os 16 x 68 x 4 = 10.75 KB; 61 KB in all. At d = 128: 34 KB + 4 x 14.75 KB = 93 KB.
//
// Backward: fused_backward_bf16.cu (the same WMMA approach, dQ by fp32 atomics).
//
// sm_80 or newer (bf16 WMMA): the body is compiled only for __CUDA_ARCH__ >= 800 (the build's archs are
// 80-real and 90) and the launcher refuses an older device with a clear error.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/attention/half_common.cuh"
#include "cuda/attention/launch.h"

namespace glance::cuda::attention::detail {

namespace {

template <int D>
struct ForwardHalfConfig {
  static constexpr int kBr = 64, kBc = 64, kWarps = kThreads / 32;
  static constexpr int kLdKV = D + 8;     // elements: rows stay 16-byte aligned, and 8 elements (16 bytes)
                                          // of padding shift consecutive rows by 4 banks for fragment loads
  static constexpr int kLdS = kBc + 4;    // floats (WMMA needs a multiple of 4 for float)
  static constexpr int kLdP = kBc + 8;    // elements (WMMA needs a multiple of 8 for 16-bit types)
  static constexpr int kLdO = D + 4;      // floats
  static constexpr int kKvBytes = round_up_128(kBc * kLdKV * 2);  // Ks, and Vs, each
  static constexpr int kSBytes = round_up_128(16 * kLdS * 4);     // per warp
  static constexpr int kPBytes = round_up_128(16 * kLdP * 2);
  static constexpr int kOBytes = round_up_128(16 * kLdO * 4);
  static constexpr int kWarpBytes = kSBytes + kPBytes + kOBytes;
  static constexpr int kSmemBytes = 2 * kKvBytes + kWarps * kWarpBytes;
  static_assert(kBr == 16 * kWarps, "each warp owns 16 query rows");
  static_assert(kBr == kBc, "the Q tile is staged through the K buffer");
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    forward_half_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        T* __restrict__ out, float* __restrict__ lse, const int32_t* __restrict__ cu_seqlens,
                        int64_t total_tokens, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // not built: the archs are sm_80 and sm_90, and the launcher refuses older devices
#else
  namespace wmma = nvcuda::wmma;
  using C = ForwardHalfConfig<D>;
  const int h = blockIdx.y, b = blockIdx.z;
  const ClipRange clip = clip_range(cu_seqlens, b);
  const int q0 = blockIdx.x * C::kBr;
  if (q0 >= clip.len) return;

  const int64_t row0 = static_cast<int64_t>(h) * total_tokens + clip.begin;
  const int64_t base = row0 * D;

  extern __shared__ __align__(128) unsigned char smem[];
  T* Ks = reinterpret_cast<T*>(smem);                // [Bc][kLdKV]
  T* Vs = reinterpret_cast<T*>(smem + C::kKvBytes);  // [Bc][kLdKV]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  unsigned char* mine = smem + 2 * C::kKvBytes + warp * C::kWarpBytes;
  float* Ss = reinterpret_cast<float*>(mine);                     // [16][kLdS]  this warp's scores
  T* Ps = reinterpret_cast<T*>(mine + C::kSBytes);                // [16][kLdP]  its probabilities
  float* Os = reinterpret_cast<float*>(mine + C::kSBytes + C::kPBytes);  // [16][kLdO]  its output

  // The Q tile, staged through Ks; each warp keeps its 16 rows as A fragments for the whole loop.
  load_rows_half<C::kBr, D, C::kLdKV>(Ks, q + base + static_cast<int64_t>(q0) * D, clip.len - q0);
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], Ks + warp * 16 * C::kLdKV + kk * 16, C::kLdKV);
  for (int idx = lane; idx < 16 * D; idx += 32) Os[(idx / D) * C::kLdO + idx % D] = 0.f;

  // This lane's share of the softmax: row `row` of the warp's 16, columns half, half + 2, ...
  const int row = lane / 2, half = lane % 2;
  float m = -INFINITY, l = 0.f;

  for (int k0 = 0; k0 < clip.len; k0 += C::kBc) {
    __syncthreads();  // every warp is done with Ks (the staged Q, or the previous K tile) and Vs
    load_rows_half<C::kBc, D, C::kLdKV>(Ks, k + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    load_rows_half<C::kBc, D, C::kLdKV>(Vs, v + base + static_cast<int64_t>(k0) * D, clip.len - k0);
    __syncthreads();

    // S = Q K^T for the warp's 16 rows, 16 key columns at a time.
#pragma unroll
    for (int n = 0; n < C::kBc / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
      wmma::fill_fragment(sf, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;  // B(e, c) = K[c][e]
        wmma::load_matrix_sync(kf, Ks + n * 16 * C::kLdKV + kk * 16, C::kLdKV);
        wmma::mma_sync(sf, qf[kk], kf, sf);
      }
      wmma::store_matrix_sync(Ss + n * 16, sf, C::kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // The online softmax in fp32 (the two lanes of a row combine with one shuffle).
    const int valid_cols = clip.len - k0;
    const float* s_row = Ss + row * C::kLdS;
    float tile_max = -INFINITY;
    for (int c = half; c < C::kBc; c += 2)
      if (c < valid_cols) tile_max = fmaxf(tile_max, s_row[c] * scale_log2);
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_new = fmaxf(m, tile_max);  // finite: column k0 is inside the clip
    const float correction = exp2f(m - m_new);
    float tile_sum = 0.f;
    T* p_row = Ps + row * C::kLdP;
    for (int c = half; c < C::kBc; c += 2) {
      const float p = c < valid_cols ? exp2f(s_row[c] * scale_log2 - m_new) : 0.f;
      p_row[c] = HalfOps<T>::from_float(p);
      tile_sum += p;
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    l = l * correction + tile_sum;
    m = m_new;
    float* o_row = Os + row * C::kLdO;
    for (int e = half; e < D; e += 2) o_row[e] *= correction;
    __syncwarp();

    // O += P V, 16 output columns at a time, the accumulator round-tripping through Os.
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
      wmma::load_matrix_sync(of, Os + n * 16, C::kLdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < C::kBc / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;  // B(c, e) = V[c][e]
        wmma::load_matrix_sync(pf, Ps + kk * 16, C::kLdP);
        wmma::load_matrix_sync(vf, Vs + kk * 16 * C::kLdKV + n * 16, C::kLdKV);
        wmma::mma_sync(of, pf, vf, of);
      }
      wmma::store_matrix_sync(Os + n * 16, of, C::kLdO, wmma::mem_row_major);
    }
    __syncwarp();  // Os and Ps are read by other lanes before this lane's next softmax writes them
  }

  const int r = q0 + warp * 16 + row;
  if (r < clip.len) {
    const float inv = 1.f / l;
    const float* o_row = Os + row * C::kLdO;
    for (int e = half; e < D; e += 2) out[base + static_cast<int64_t>(r) * D + e] = HalfOps<T>::from_float(o_row[e] * inv);
    if (half == 0) lse[row0 + r] = (m + log2f(l)) * kLn2;
  }
#endif
}

template <typename T, int D>
void launch(const Problem& p, const void* q, const void* k, const void* v, void* out, float* lse, const char* name) {
  using C = ForwardHalfConfig<D>;
  const dim3 grid((p.max_len + C::kBr - 1) / C::kBr, p.heads, p.batch);
  set_smem_limit(reinterpret_cast<const void*>(&forward_half_kernel<T, D>), name, C::kSmemBytes);
  forward_half_kernel<T, D><<<grid, kThreads, C::kSmemBytes, p.stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out), lse,
      p.cu_seqlens, p.total_tokens, p.scale * kLog2e);
  check_launch(name, D, grid, C::kSmemBytes, p.stream);
}

template <typename T>
void launch_type(const Problem& p, const void* q, const void* k, const void* v, void* out, float* lse,
                 const char* name) {
  switch (p.head_dim) {
    case 32: return launch<T, 32>(p, q, k, v, out, lse, name);
    case 64: return launch<T, 64>(p, q, k, v, out, lse, name);
    case 128: return launch<T, 128>(p, q, k, v, out, lse, name);
  }
}

}  // namespace

void launch_forward_half(const Problem& p, HalfType type, const void* q, const void* k, const void* v, void* out,
                         float* lse) {
  int device = 0, major = 0;
  check_call(cudaGetDevice(&device), "forward_half: cudaGetDevice");
  check_call(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
             "forward_half: cudaDeviceGetAttribute");
  if (major < 8) {
    throw std::runtime_error("forward_half: bf16/fp16 WMMA attention needs compute capability 8.0 or newer; device " +
                             std::to_string(device) + " has " + std::to_string(major) + ".x");
  }
  if (type == HalfType::BFloat16) launch_type<__nv_bfloat16>(p, q, k, v, out, lse, "forward_bf16");
  else launch_type<__half>(p, q, k, v, out, lse, "forward_fp16");
}

Tiles forward_half_tiles(int head_dim) {
  switch (head_dim) {
    case 32: return {64, 64, kThreads, ForwardHalfConfig<32>::kSmemBytes};
    case 64: return {64, 64, kThreads, ForwardHalfConfig<64>::kSmemBytes};
    case 128: return {64, 64, kThreads, ForwardHalfConfig<128>::kSmemBytes};
  }
  return {};
}

}  // namespace glance::cuda::attention::detail
