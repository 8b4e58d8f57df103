// The CUDA rungs of the attention ladder (cuda/attention/, docs/09) on the GPU: forward and
// forward+backward throughput and memory of the fused kernels, on raw device buffers.
//
//   cmake -S . -B build -DGLANCE_CUDA=ON && cmake --build build -j --target bench_attention_cuda
//   ./build/bench/bench_attention_cuda [--reps 20] [--max-n 32768] [--dtypes fp32,bf16,fp16] [--deterministic]
//       > glance_cuda.jsonl                                        (one command line)
//   python3 bench/attention_torch.py > torch.jsonl          (PyTorch SDPA on the same cases)
//
// One JSON line per (case, kernel):
//   {"bench":"attention","case":"n4096_d64","kernel":"fused_fp32","dtype":"fp32","clips":4,"tokens":16384,
//    "d":64,"heads":32,"fwd_ms":..,"fwd_tflops":..,"fwdbwd_ms":..,"fwdbwd_tflops":..,"peak_mb":..,"device":".."}
//
// FLOP convention (FlashAttention's, the Triton tutorial's): forward = 4 * H * d * sum_i L_i^2 (two
// products of L x L x d per clip and head, 2 FLOPs per multiply-add), backward = 2.5 x forward, so
// forward+backward = 3.5 x forward. Only the useful work counts: no padding, no masked-out blocks.
// peak_mb: every device buffer the kernels touch (q, k, v, out, lse; for forward+backward also dout,
// dq, dk, dv and the delta workspace, and for bf16/fp16 the fp32 dQ accumulator): the fused kernels
// allocate nothing themselves.
// Times: the median of --reps runs after 3 warm-up runs, measured with CUDA events.
// --deterministic: the fp32 backward with its deterministic dQ kernel (the half backward has none).
// --dtypes: which precisions, in the order given (scripts/gpu_run.sh runs each under its own time limit).
//
// Cases (the hidden size H * d = 2048 and 16k tokens per batch of the FlashAttention charts):
//   n{N}_d{d}: 16384 / N clips of N tokens (one clip from N = 16384 on), N = 512 .. --max-n, d = 64 (H = 32)
//              and 128 (H = 16);
//   ragged:    the CPU tests' pack, clips of 1, 7, 64, 197, 1568 tokens, H = 12, d = 64;
//   rlt_pack:  32 clips with the token counts RLT gives 8 built-in clips at 16 x 224 x 224 (tubelets
//              2 x 16 x 16), each repeated 4 times: ViT-B's H = 12, d = 64.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/attention/fused_attention.h"
#include "rlt/synthetic_video.h"
#include "rlt/tokenizer.h"

namespace fa = glance::cuda::attention;

namespace {

void ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) { ok(cudaMalloc(&ptr, std::max<size_t>(n, 16)), "cudaMalloc"); }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// Fills a device buffer of n elements of T with normal(0, 1) values (made on the host).
template <typename T>
void fill_normal(const Buffer& b, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<T> host(n);
  for (T& x : host) {
    if constexpr (std::is_same_v<T, float>) x = normal(rng);
    else if constexpr (std::is_same_v<T, __nv_bfloat16>) x = __float2bfloat16(normal(rng));
    else x = __float2half(normal(rng));
  }
  ok(cudaMemcpy(b.ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), "upload");
}

// Median milliseconds of f() over reps runs (after 3 warm-ups), timed with events on the default stream.
template <typename F>
double median_ms(int reps, F f) {
  for (int i = 0; i < 3; ++i) f();
  ok(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  ok(cudaEventCreate(&start), "event"), ok(cudaEventCreate(&stop), "event");
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    ok(cudaEventRecord(start), "record");
    f();
    ok(cudaEventRecord(stop), "record");
    ok(cudaEventSynchronize(stop), "sync");
    float t = 0;
    ok(cudaEventElapsedTime(&t, start, stop), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(start), cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::string device_name() {
  int device = 0;
  cudaDeviceProp prop{};
  cudaGetDevice(&device);
  cudaGetDeviceProperties(&prop, device);
  return prop.name;
}

enum class Precision { Fp32, Bf16, Fp16 };

void run_case(const std::string& label, const std::vector<int64_t>& counts, int heads, int d, Precision precision,
              int reps, bool deterministic) {
  std::vector<int32_t> cu{0};
  int max_len = 0;
  double sum_sq = 0;
  for (int64_t n : counts) {
    cu.push_back(cu.back() + static_cast<int32_t>(n));
    max_len = std::max(max_len, static_cast<int>(n));
    sum_sq += double(n) * double(n);
  }
  const int64_t N = cu.back();
  const size_t elems = static_cast<size_t>(heads) * N * d, rows = static_cast<size_t>(heads) * N;
  const size_t item = precision == Precision::Fp32 ? 4 : 2;
  Buffer cu_dev(cu.size() * sizeof(int32_t));
  ok(cudaMemcpy(cu_dev.ptr, cu.data(), cu.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "upload cu_seqlens");
  Buffer q(elems * item), k(elems * item), v(elems * item), out(elems * item), lse(rows * 4);
  fa::Problem p;
  p.heads = heads, p.total_tokens = N, p.head_dim = d, p.batch = static_cast<int>(counts.size());
  p.max_len = max_len, p.cu_seqlens = cu_dev.as<int32_t>(), p.scale = 1.f / std::sqrt(float(d));

  const double fwd_flop = 4.0 * heads * d * sum_sq;
  double fwd_ms = 0, fwdbwd_ms = -1;
  size_t bytes = q.bytes + k.bytes + v.bytes + out.bytes + lse.bytes;
  const char* kernel = "fused_fp32";
  if (precision == Precision::Fp32) {
    fill_normal<float>(q, elems, 1), fill_normal<float>(k, elems, 2), fill_normal<float>(v, elems, 3);
    fwd_ms = median_ms(reps, [&] { fa::forward_fp32(p, q.as<float>(), k.as<float>(), v.as<float>(), out.as<float>(), lse.as<float>()); });
    Buffer dout(elems * 4), dq(elems * 4), dk(elems * 4), dv(elems * 4), delta(rows * 4);
    fill_normal<float>(dout, elems, 4);
    bytes += dout.bytes + dq.bytes + dk.bytes + dv.bytes + delta.bytes;
    fwdbwd_ms = median_ms(reps, [&] {
      fa::forward_fp32(p, q.as<float>(), k.as<float>(), v.as<float>(), out.as<float>(), lse.as<float>());
      fa::backward_fp32(p, q.as<float>(), k.as<float>(), v.as<float>(), out.as<float>(), lse.as<float>(),
                        dout.as<float>(), dq.as<float>(), dk.as<float>(), dv.as<float>(), delta.as<float>(),
                        deterministic);
    });
    if (deterministic) kernel = "fused_fp32_deterministic";
  } else {
    const fa::HalfType type = precision == Precision::Bf16 ? fa::HalfType::BFloat16 : fa::HalfType::Float16;
    kernel = precision == Precision::Bf16 ? "fused_bf16" : "fused_fp16";
    if (precision == Precision::Bf16) {
      fill_normal<__nv_bfloat16>(q, elems, 1), fill_normal<__nv_bfloat16>(k, elems, 2), fill_normal<__nv_bfloat16>(v, elems, 3);
    } else {
      fill_normal<__half>(q, elems, 1), fill_normal<__half>(k, elems, 2), fill_normal<__half>(v, elems, 3);
    }
    fwd_ms = median_ms(reps, [&] { fa::forward_half(p, type, q.ptr, k.ptr, v.ptr, out.ptr, lse.as<float>()); });
    Buffer dout(elems * 2), dq(elems * 2), dk(elems * 2), dv(elems * 2), delta(rows * 4), dq_accum(elems * 4);
    if (precision == Precision::Bf16) fill_normal<__nv_bfloat16>(dout, elems, 4);
    else fill_normal<__half>(dout, elems, 4);
    bytes += dout.bytes + dq.bytes + dk.bytes + dv.bytes + delta.bytes + dq_accum.bytes;
    fwdbwd_ms = median_ms(reps, [&] {
      fa::forward_half(p, type, q.ptr, k.ptr, v.ptr, out.ptr, lse.as<float>());
      fa::backward_half(p, type, q.ptr, k.ptr, v.ptr, out.ptr, lse.as<float>(), dout.ptr, dq.ptr, dk.ptr, dv.ptr,
                        delta.as<float>(), dq_accum.as<float>());
    });
  }
  std::printf("{\"bench\":\"attention\",\"case\":\"%s\",\"kernel\":\"%s\",\"dtype\":\"%s\",\"clips\":%zu,"
              "\"tokens\":%lld,\"max_len\":%d,\"d\":%d,\"heads\":%d,\"fwd_ms\":%.4f,\"fwd_tflops\":%.3f,",
              label.c_str(), kernel, precision == Precision::Fp32 ? "fp32" : precision == Precision::Bf16 ? "bf16" : "fp16",
              counts.size(), static_cast<long long>(N), max_len, d, heads, fwd_ms, fwd_flop / (fwd_ms * 1e-3) / 1e12);
  if (fwdbwd_ms > 0) {
    std::printf("\"fwdbwd_ms\":%.4f,\"fwdbwd_tflops\":%.3f,\"bwd_ms\":%.4f,\"bwd_tflops\":%.3f,", fwdbwd_ms,
                3.5 * fwd_flop / (fwdbwd_ms * 1e-3) / 1e12, fwdbwd_ms - fwd_ms,
                2.5 * fwd_flop / ((fwdbwd_ms - fwd_ms) * 1e-3) / 1e12);
  } else {
    std::printf("\"fwdbwd_ms\":null,\"fwdbwd_tflops\":null,");
  }
  if (label.rfind("n", 0) != 0) {  // the packs: list the clip lengths (attention_torch.py --rlt-counts)
    std::printf("\"counts\":[");
    for (size_t i = 0; i < counts.size(); ++i) std::printf("%s%lld", i ? "," : "", static_cast<long long>(counts[i]));
    std::printf("],");
  }
  std::printf("\"peak_mb\":%.1f,\"flops\":\"fwd=4*H*d*sum(L^2), bwd=2.5*fwd\",\"device\":\"%s\"}\n", bytes / 1e6,
              device_name().c_str());
  std::fflush(stdout);
}

// Token counts of 8 built-in clips at the paper's resolution, tokenized by RLT (as bench/bench_attention.cpp).
std::vector<int64_t> rlt_counts() {
  glance::rlt::SyntheticVideoConfig c;
  c.count = 8, c.frames = 16, c.size = 224, c.object_size = 56, c.speed = 4;
  glance::rlt::SyntheticVideo video(c);
  glance::rlt::TokenizerConfig tok;
  tok.tubelet = 2, tok.patch = 16;
  std::vector<int64_t> counts;
  for (int64_t i = 0; i < c.count; ++i) counts.push_back(glance::rlt::tokenize(video.clip_tensor(i), tok).tokens());
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  int64_t max_n = 32768;
  bool deterministic = false;
  std::vector<Precision> precisions = {Precision::Fp32, Precision::Bf16, Precision::Fp16};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--max-n" && i + 1 < argc) max_n = std::atoll(argv[++i]);
    else if (a == "--deterministic") deterministic = true;
    else if (a == "--dtypes" && i + 1 < argc) {
      precisions.clear();
      std::string list = argv[++i];
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string name = list.substr(start, comma - start);
        if (name == "fp32") precisions.push_back(Precision::Fp32);
        else if (name == "bf16") precisions.push_back(Precision::Bf16);
        else if (name == "fp16") precisions.push_back(Precision::Fp16);
        else {
          std::fprintf(stderr, "bench_attention_cuda: --dtypes takes fp32, bf16 and fp16 separated by commas, not '%s'\n",
                       name.c_str());
          return 2;
        }
        start = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: bench_attention_cuda [--reps R] [--max-n N] [--dtypes fp32,bf16,fp16] [--deterministic]\n");
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_attention_cuda: no CUDA device\n");
    return 1;
  }
  try {
    std::vector<int64_t> rlt;  // 8 clips' RLT token counts, 4 times
    const std::vector<int64_t> eight = rlt_counts();
    for (int r = 0; r < 4; ++r) rlt.insert(rlt.end(), eight.begin(), eight.end());
    for (Precision precision : precisions) {
      // The packs first: a run cut short by a time limit still has the variable-length cases.
      run_case("ragged_1_7_64_197_1568_d64", {1, 7, 64, 197, 1568}, 12, 64, precision, reps, deterministic);
      run_case("rlt_pack_32_d64", rlt, 12, 64, precision, reps, deterministic);
      for (int d : {64, 128}) {
        const int heads = 2048 / d;
        for (int64_t n = 512; n <= max_n; n *= 2) {
          const int64_t clips = std::max<int64_t>(1, 16384 / n);
          run_case("n" + std::to_string(n) + "_d" + std::to_string(d), std::vector<int64_t>(clips, n), heads, d,
                   precision, n >= 16384 ? std::max(3, reps / 4) : reps, deterministic);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_attention_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
