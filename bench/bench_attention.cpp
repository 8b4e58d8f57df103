// The attention ladder on the CPU: each kernel timed on the same inputs, forward and forward+backward:
// "reference", the plain per-clip loop with materialised scores, and "tiled", the CPU backend's attention:
// online softmax (FlashAttention's algorithm) when the longest clip has at least 1024 tokens, below that the
// materialised scores with equal-length clips batched and spread over the threads (tensor/cpu/attention.cpp).
//
//   ./build/bench/bench_attention [--max-n 8192] [--reference-max-n 8192] [--reps 3] [--threads 2] [--no-reference]
//   (--no-reference: the device's kernel alone, as bench/compare_cpu_torch.py runs it against PyTorch's SDPA;
//    --blocks 64,256,128: the tiled kernel called directly with these block sizes, cpu::TiledBlocks, for tuning;
//    peak_mb is then not measured)
//
// One JSON line per (case, kernel):
//   {"bench":"attention","case":"n1568_d64_h2","kernel":"tiled","tokens":1568,"d":64,"heads":2,
//    "fwd_ms":..,"fwd_tflops":..,"fwdbwd_ms":..,"fwdbwd_tflops":..,"peak_mb":..,"ratio_vs_reference":..}
//
// FLOP convention (FlashAttention's): forward = 4 * H * d * sum_i L_i^2 (two products of
// L x L x d per clip and head), backward = 2.5 x forward, so forward+backward = 3.5 x forward.
// peak_mb: the most tensor bytes held during forward+backward above what was held before
// (tensor/counters.h), i.e. the kernel's own memory: the reference's L x L scores, probabilities and
// their gradients; the tiled kernel's O(L) row statistics.
// Cases: one clip of N tokens for N = 512 .. max-n (d = 64 and 128), a ragged pack (1, 7, 64, 197, 1568)
// and the token counts of a real RLT batch (8 built-in clips at 16 x 224 x 224, tubelets 2 x 16 x 16).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "nn/attention/kernel.h"
#include "rlt/synthetic_video.h"
#include "rlt/tokenizer.h"
#include "tensor/counters.h"
#include "tensor/cpu/attention.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace glance;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Timing {
  double fwd_ms = 0, fwdbwd_ms = 0, peak_mb = 0;
};

// The tiled kernel called directly with the given block sizes (--blocks), forward then backward with g as the
// output's gradient: for choosing cpu::TiledBlocks' defaults.
Timing time_tiled_blocks(const cpu::TiledBlocks& blocks, const std::vector<int64_t>& counts, int64_t heads, int64_t d,
                         int reps) {
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(counts);
  const int64_t N = layout.total_tokens();
  Generator gen(1);
  const Tensor q = ops::randn({heads, N, d}, DType::Float32, &gen), k = ops::randn({heads, N, d}, DType::Float32, &gen);
  const Tensor v = ops::randn({heads, N, d}, DType::Float32, &gen), g = ops::randn({heads, N, d}, DType::Float32, &gen);
  std::vector<int64_t> offsets{0};
  for (int64_t c : counts) offsets.push_back(offsets.back() + c);
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> fwd, both;
  for (int r = 0; r < reps + 1; ++r) {
    double t0 = now();
    const AttentionForwardResult f = cpu::tiled_attention_forward(q, k, v, offsets, scale, blocks);
    const double t1 = now();
    cpu::tiled_attention_backward(g, q, k, v, f, offsets, scale, blocks);
    if (r > 0) fwd.push_back(t1 - t0), both.push_back(now() - t0);
  }
  std::sort(fwd.begin(), fwd.end());
  std::sort(both.begin(), both.end());
  return {1000 * fwd[fwd.size() / 2], 1000 * both[both.size() / 2], 0};
}

Timing time_kernel(const std::string& name, const std::vector<int64_t>& counts, int64_t heads, int64_t d, int reps) {
  const nn::TokenLayout layout = nn::TokenLayout::from_counts(counts);
  const int64_t N = layout.total_tokens();
  Generator gen(1);
  Tensor q = ops::randn({heads, N, d}, DType::Float32, &gen), k = ops::randn({heads, N, d}, DType::Float32, &gen);
  Tensor v = ops::randn({heads, N, d}, DType::Float32, &gen), g = ops::randn({heads, N, d}, DType::Float32, &gen);
  const nn::AttentionKernel kernel = nn::attention_kernel(name);
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> fwd, both;
  Timing t;
  for (int r = 0; r < reps + 1; ++r) {  // the first round warms up
    {
      autograd::NoGradGuard no_grad;
      const double t0 = now();
      Tensor o = kernel(q, k, v, layout, scale);
      if (r > 0) fwd.push_back(now() - t0);
    }
    q.set_requires_grad(true), k.set_requires_grad(true), v.set_requires_grad(true);
    const int64_t before = memory_stats().in_use;
    reset_peak_memory();
    const double t0 = now();
    Tensor o = kernel(q, k, v, layout, scale);
    sum(o * g).backward();
    if (r > 0) both.push_back(now() - t0);
    t.peak_mb = std::max(t.peak_mb, double(memory_stats().peak - before) / 1e6);
    q = q.detach(), k = k.detach(), v = v.detach();
  }
  std::sort(fwd.begin(), fwd.end());
  std::sort(both.begin(), both.end());
  t.fwd_ms = 1000 * fwd[fwd.size() / 2];
  t.fwdbwd_ms = 1000 * both[both.size() / 2];
  return t;
}

const cpu::TiledBlocks* g_blocks = nullptr;  // --blocks: time the tiled kernel with these sizes instead

void run_case(const std::string& label, const std::vector<int64_t>& counts, int64_t heads, int64_t d, int reps,
              bool with_reference) {
  double sum_sq = 0;
  int64_t tokens = 0;
  for (int64_t c : counts) sum_sq += double(c) * double(c), tokens += c;
  const double fwd_flop = 4.0 * double(heads) * double(d) * sum_sq;
  double reference_ms = 0;
  for (const std::string kernel : {"reference", "tiled"}) {
    if (kernel == "reference" && !with_reference) continue;
    const Timing t = kernel == "tiled" && g_blocks ? time_tiled_blocks(*g_blocks, counts, heads, d, reps)
                                                   : time_kernel(kernel, counts, heads, d, reps);
    if (kernel == "reference") reference_ms = t.fwdbwd_ms;
    std::printf("{\"bench\":\"attention\",\"case\":\"%s\",\"kernel\":\"%s\",\"clips\":%zu,\"tokens\":%lld,\"d\":%lld,"
                "\"heads\":%lld,\"fwd_ms\":%.3f,\"fwd_tflops\":%.4f,\"fwdbwd_ms\":%.3f,\"fwdbwd_tflops\":%.4f,"
                "\"peak_mb\":%.1f",
                label.c_str(), kernel.c_str(), counts.size(), (long long)tokens, (long long)d, (long long)heads,
                t.fwd_ms, fwd_flop / (t.fwd_ms * 1e-3) / 1e12, t.fwdbwd_ms,
                3.5 * fwd_flop / (t.fwdbwd_ms * 1e-3) / 1e12, t.peak_mb);
    if (kernel == "tiled" && reference_ms > 0) std::printf(",\"fwdbwd_ratio_vs_reference\":%.3f", reference_ms / t.fwdbwd_ms);
    std::printf("}\n");
    std::fflush(stdout);
  }
}

// Token counts of 8 built-in clips at the paper's resolution, tokenized by RLT (tau 0.1).
std::vector<int64_t> rlt_counts() {
  rlt::SyntheticVideoConfig c;
  c.count = 8, c.frames = 16, c.size = 224, c.object_size = 56, c.speed = 4;
  rlt::SyntheticVideo video(c);
  rlt::TokenizerConfig tok;
  tok.tubelet = 2, tok.patch = 16;
  std::vector<int64_t> counts;
  for (int64_t i = 0; i < c.count; ++i) counts.push_back(rlt::tokenize(video.clip_tensor(i), tok).tokens());
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t max_n = 8192, reference_max_n = 8192, threads = 2, heads = 2;
  bool with_reference = true;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--max-n" && i + 1 < argc) max_n = std::atoll(argv[++i]);
    else if (a == "--reference-max-n" && i + 1 < argc) reference_max_n = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoll(argv[++i]);
    else if (a == "--heads" && i + 1 < argc) heads = std::atoll(argv[++i]);
    else if (a == "--no-reference") with_reference = false;
    else if (a == "--blocks" && i + 1 < argc) {
      static cpu::TiledBlocks blocks;
      long long rows = 0, cols = 0, backward = 0;
      if (std::sscanf(argv[++i], "%lld,%lld,%lld", &rows, &cols, &backward) != 3 || rows < 1 || cols < 1 ||
          backward < 1) {
        std::fprintf(stderr, "bench_attention: --blocks wants ROWS,COLS,BACKWARD, each >= 1 (e.g. 256,240,192), got %s\n",
                     argv[i]);
        return 2;
      }
      blocks = {rows, cols, backward};
      g_blocks = &blocks;
    }
    else {
      std::fprintf(stderr, "usage: bench_attention [--max-n N] [--reference-max-n N] [--reps R] [--threads T] [--heads H] [--no-reference]\n"
                           "                       [--blocks ROWS,COLS,BACKWARD]\n");
      return 2;
    }
  }
  omp_set_num_threads(static_cast<int>(threads));
  const std::vector<int64_t> rlt = rlt_counts();
  for (int64_t d : {64, 128}) {
    for (int64_t n : {512, 1024, 1568, 2048, 4096, 8192, 16384, 32768}) {
      if (n > max_n) break;
      run_case("n" + std::to_string(n) + "_d" + std::to_string(d) + "_h" + std::to_string(heads), {n}, heads, d,
               n >= 8192 ? 1 : reps, with_reference && n <= reference_max_n);
    }
    run_case("ragged_1_7_64_197_1568_d" + std::to_string(d), {1, 7, 64, 197, 1568}, heads, d, reps, with_reference);
    std::string label = "rlt_pack";
    for (int64_t c : rlt) label += "_" + std::to_string(c);
    run_case(label + "_d" + std::to_string(d), rlt, heads, d, reps, with_reference);
  }
  return 0;
}
