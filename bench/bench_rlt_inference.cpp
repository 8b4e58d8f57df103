// RLT at inference on a ViT-B/16: the same model's forward pass on the same clips, every tubelet kept (dense) and
// with run-length tokenization, on clips from a still camera and from a panning one. What the paper's "no
// training" result rests on: RLT only chooses which tokens the model sees, so a model trained dense (or converted
// from VideoMAE, docs/12) runs faster where the video stands still.
//
//   ./build/bench/bench_rlt_inference [--clips 2] [--reps 3] [--threads 2] [--attention-kernel reference|tiled]
//
// Model: the "base" preset (width 768, depth 12, 12 heads, tubelets 2 x 16 x 16 on 16 frames of 224 x 224: 1568
// tokens per clip), VideoMAE's 1-D positions, 400 classes, random weights (speed does not depend on them).
// Clips: the built-in synthetic video at 224 x 224 (one moving object over a textured background, speed 4 px per
// frame), with pan 0 (a still camera: RLT drops the background) and pan 3 px per frame (the whole frame moves:
// RLT keeps almost everything). Each forward pass takes --clips clips packed as one sequence; dense and RLT
// alternate, --reps rounds, the median time counts. Tokenization is outside the timed region for both.
//
// One JSON line per (scene, policy):
//   {"bench":"rlt_inference","case":"still_rlt","tokens_per_clip":...,"kept_fraction":...,"ms":...,
//    "clips_per_s":...,"peak_mb":...,"speedup_vs_dense":...}
// peak_mb: the most tensor bytes held during the forward pass above what was held before (tensor/counters.h).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "rlt/model.h"
#include "rlt/synthetic_video.h"
#include "rlt/tokenizer.h"
#include "tensor/counters.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;

struct Timed {
  double ms = 0, peak_mb = 0;
};

Timed forward_once(const RLTransformer& model, const PackedClips& packed) {
  autograd::NoGradGuard no_grad;
  const int64_t before = memory_stats().in_use;
  reset_peak_memory();
  const auto t0 = std::chrono::steady_clock::now();
  Tensor logits = model.forward(packed.tubelets, packed.layout);
  (void)ops::sum(logits).item();  // every value computed
  const auto t1 = std::chrono::steady_clock::now();
  return {std::chrono::duration<double, std::milli>(t1 - t0).count(), double(memory_stats().peak - before) / 1e6};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t clips = 2, reps = 3, threads = 2;
  std::string kernel = "reference";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--clips" && i + 1 < argc) clips = std::atoll(argv[++i]);
    else if (arg == "--reps" && i + 1 < argc) reps = std::atoll(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::atoll(argv[++i]);
    else if (arg == "--attention-kernel" && i + 1 < argc) kernel = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_rlt_inference [--clips N] [--reps N] [--threads N] [--attention-kernel K]\n");
      return 2;
    }
  }
  if (clips < 1 || reps < 1 || threads < 1) {
    std::fprintf(stderr, "bench_rlt_inference: --clips, --reps and --threads must be >= 1\n");
    return 2;
  }
  omp_set_num_threads(static_cast<int>(threads));

  ModelConfig config = model_preset("base");
  config.pos_kind = "1d", config.drop_path = 0, config.attention_kernel = kernel;
  RLTransformer model(config);
  model.eval();

  for (const auto& [scene, pan] : {std::pair{"still", 0.0}, std::pair{"panning", 3.0}}) {
    SyntheticVideoConfig sv;
    sv.count = clips, sv.frames = config.frames, sv.size = config.image_size, sv.object_size = 40, sv.speed = 4.0;
    sv.pan = pan, sv.seed = 11;
    const SyntheticVideo video(sv);
    PackedClips packed[2];  // dense, RLT
    for (int p = 0; p < 2; ++p) {
      TokenizerConfig tc;
      tc.tubelet = config.tubelet, tc.patch = config.patch, tc.tau = 0.1;
      tc.policy = p == 0 ? DropPolicy::Dense : DropPolicy::RLT;
      std::vector<TokenizedClip> tokenized;
      for (int64_t i = 0; i < clips; ++i) tokenized.push_back(tokenize(video.clip_tensor(i), tc));
      packed[p] = pack_clips(tokenized);
    }
    std::vector<double> ms[2];
    double peak[2] = {0, 0};
    forward_once(model, packed[1]);  // warm-up: buffers, page faults
    for (int64_t r = 0; r < reps; ++r) {
      for (int p = 0; p < 2; ++p) {
        const Timed t = forward_once(model, packed[p]);
        ms[p].push_back(t.ms);
        peak[p] = std::max(peak[p], t.peak_mb);
      }
    }
    double median[2];
    for (int p = 0; p < 2; ++p) {
      std::sort(ms[p].begin(), ms[p].end());
      median[p] = ms[p][ms[p].size() / 2];
    }
    const double grid = double(config.grid().size());
    for (int p = 0; p < 2; ++p) {
      const double kept = double(packed[p].layout.total_tokens()) / (grid * double(clips));
      std::printf("{\"bench\":\"rlt_inference\",\"case\":\"%s_%s\",\"model\":\"vit_b16_16x224\",\"clips\":%lld,"
                  "\"tokens_per_clip\":%.0f,\"kept_fraction\":%.3f,\"ms\":%.1f,\"clips_per_s\":%.3f,\"peak_mb\":%.1f,"
                  "\"speedup_vs_dense\":%.3f,\"attention_kernel\":\"%s\",\"threads\":%lld,\"reps\":%lld}\n",
                  scene, p == 0 ? "dense" : "rlt", static_cast<long long>(clips), kept * grid, kept, median[p],
                  double(clips) / (median[p] * 1e-3), peak[p], median[0] / median[p], config.attention_kernel.c_str(),
                  static_cast<long long>(threads), static_cast<long long>(reps));
      std::fflush(stdout);
    }
  }
  return 0;
}
