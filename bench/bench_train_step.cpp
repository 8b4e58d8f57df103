// One training step of the RLT transformer on the CPU: forward, cross-entropy, backward, AdamW.
//
// The model (issue: "this exact model"): embed 192, depth 4, 3 heads, MLP 4x, 10 classes; batch 8 clips of
// 16 frames of 112 x 112, tubelets 2 x 16 x 16 -> 8 x 7 x 7 = 392 tokens per clip, nothing dropped (a dense
// pack of 3136 tokens). The clips are tokenized once, outside the timed loop: the step is what is timed.
//
//   ./build/bench/bench_train_step [--steps 20] [--warmup 3] [--threads 2] [--profile]
//
// Prints per-step times to stderr and, as the last stdout line, one JSON object with the median ms/step.
// bench/train_step_torch.py times the same model in PyTorch; bench/compare_train_step.sh runs both and
// prints the ratio. --profile adds a breakdown of one step by phase (forward by layer, backward, optimizer).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "nn/loss.h"
#include "nn/optim/adamw.h"
#include "rlt/model.h"
#include "rlt/tokenizer.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace glance;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 20, warmup = 3, threads = 2;
  bool profile = false;
  std::string attention = "reference";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoll(argv[++i]);
    else if (a == "--profile") profile = true;
    else if (a == "--attention" && i + 1 < argc) attention = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_train_step [--steps N] [--warmup N] [--threads N] [--attention reference|tiled] [--profile]\n");
      return 2;
    }
  }
  omp_set_num_threads(static_cast<int>(threads));

  rlt::ModelConfig config = rlt::model_preset("small");  // 16 x 112 x 112, 2x16x16, dim 192, depth 4, 3 heads
  config.classes = 10;
  config.attention_kernel = attention;
  manual_seed(0);
  rlt::RLTransformer model(config);
  nn::AdamW optimizer(nn::decay_groups(model, 1e-3, 0.05));

  const int64_t batch = 8;
  rlt::TokenizerConfig tok;
  tok.policy = rlt::DropPolicy::Dense;
  std::vector<rlt::TokenizedClip> clips;
  Generator gen(1);
  for (int64_t b = 0; b < batch; ++b) {
    clips.push_back(rlt::tokenize(normal({config.frames, 3, config.image_size, config.image_size}, 0, 1, DType::Float32, &gen), tok));
  }
  const rlt::PackedClips packed = rlt::pack_clips(clips);
  std::vector<int64_t> label_values;
  for (int64_t b = 0; b < batch; ++b) label_values.push_back(b % config.classes);
  const Tensor labels = ops::from_vector(label_values);

  auto step = [&](bool show) {
    const double t0 = now();
    Tensor logits = model.forward(packed.tubelets, packed.layout);
    Tensor loss = nn::cross_entropy(logits, labels);
    const double t1 = now();
    optimizer.zero_grad();
    loss.backward();
    const double t2 = now();
    optimizer.step();
    const double t3 = now();
    if (show) {
      std::fprintf(stderr, "profile: forward %.1f ms, backward %.1f ms, optimizer %.1f ms\n", 1e3 * (t1 - t0),
                   1e3 * (t2 - t1), 1e3 * (t3 - t2));
    }
    return loss.item();
  };
  for (int64_t i = 0; i < warmup; ++i) step(false);
  std::vector<double> ms;
  for (int64_t i = 0; i < steps; ++i) {
    const double t0 = now();
    const double loss = step(profile && i == 0);
    ms.push_back(1e3 * (now() - t0));
    std::fprintf(stderr, "step %lld: %.1f ms (loss %.4f)\n", (long long)i, ms.back(), loss);
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2], best = sorted.front();
  std::printf(
      "{\"bench\":\"train_step\",\"case\":\"rlt_dense_d192_depth4_h3_b8_n392\",\"glance\":%.2f,\"min_ms\":%.2f,"
      "\"unit\":\"ms/step\",\"stat\":\"median\",\"steps\":%lld,\"threads\":%lld,\"tokens\":%lld,\"parameters\":%lld,"
      "\"attention\":\"%s\"}\n",
      median, best, (long long)steps, (long long)threads, (long long)packed.layout.total_tokens(),
      (long long)model.parameter_count(), attention.c_str());
  return 0;
}
