// One training step of the RLT transformer: forward, cross-entropy, backward, AdamW, on the CPU or the GPU.
//
// The model: embed 192, depth 4, 3 heads, MLP 4x, 10 classes; batch 8 clips of
// 16 frames of 112 x 112, tubelets 2 x 16 x 16 -> 8 x 7 x 7 = 392 tokens per clip, nothing dropped (a dense
// pack of 3136 tokens). The clips are tokenized once, outside the timed loop: the step is what is timed.
//
//   ./build/bench/bench_train_step [--steps 20] [--warmup 3] [--threads 2] [--profile]
//       [--attention device|reference|tiled|fused|fused_deterministic|fused_bf16]   (also --attention-kernel;
//        device, the default: the device's own kernel, nn/attention/kernel.h)
//       [--device cpu|cuda] [--tf32] [--policy dense|rlt] [--data noise|synthetic] [--preset tiny|small|base]
//       [--batch 8] [--forward-only] [--no-fusion]
//
// Prints per-step times to stderr and, as the last stdout line, one JSON object with the median ms/step.
// bench/train_step_torch.py times the same model in PyTorch (--device cuda there too); on the CPU
// bench/compare_train_step.sh runs both and prints the ratio, on the GPU scripts/gpu_run.sh does.
// --profile: after the timed steps, 3 more steps are profiled: their time by kind of op (GEMM, attention, layer
// norm, GELU, softmax, copies, other elementwise, ..., the optimizer, and the autograd and host work outside any
// kernel), on stderr as a table and on stdout as one "train_step_profile" JSON line before the result line;
// and the step's FLOP/s (its matmul and attention products) as a fraction of glance's SGEMM measured in the
// same run on a 1536^3 product (tensor/op_profile.h; by kind on the CPU only).
//
// The defaults are the CPU benchmark of docs/performance/ and print the same case name as before:
// --device cpu, --policy dense on random-noise clips, --preset small, --batch 8.
//
// --device cuda: the model (model.to), the packed tubelets and the labels move to cuda:0 once, before the
//   timed loop; the optimizer is built after the move, so its moments live there too. Each step ends with a
//   device synchronisation before the clock is read. Needs a build with the CUDA backend (GLANCE_CUDA=ON);
//   the attention kernels "fused", "fused_deterministic" and "fused_bf16" (cuda/attention/, docs/09) work then.
//   --tf32 lets float32 matmuls use TF32 tensor cores (glance::cuda::set_allow_tf32; off by default).
//   The forward is RLTransformer::forward as training runs it, including the per-clip mean (its averaging
//   matrix is built on the device from the layout's cu_seqlens; nothing is uploaded per step).
// --policy rlt: the clips are the built-in synthetic videos (rlt/synthetic_video.h: a textured static
//   background with a moving object, at the preset's size), tokenized by Run-Length Tokenization (tau 0.1);
//   --policy dense --data synthetic packs every tubelet of the same clips: that pair is "RLT vs dense".
// --no-fusion: nn composes the fused ops (nn/fused.h) from primitives instead of calling the backend's kernels.
// --forward-only: time the model's forward pass alone, without autograd (inference), instead of the step; the
//   case name ends in "_forward".
// --preset tiny: the demo's model (dim 64, depth 3, 4 heads) on 16 x 32 x 32 clips, tubelets 2 x 8 x 8, 128 tokens
//   per clip; with --batch 32 the demo's step (glance demo: batch 32, dense and RLT).
// --preset base: ViT-B (dim 768, depth 12, 12 heads) on 16 x 224 x 224 clips, 1568 tokens per clip;
//   drop_path is set to 0 (the PyTorch model has none), classes stay 10.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "nn/fused.h"
#include "nn/loss.h"
#include "nn/optim/adamw.h"
#include "rlt/model.h"
#include "rlt/synthetic_video.h"
#include "rlt/tokenizer.h"
#include "tensor/counters.h"
#include "tensor/cpu/gemm.h"
#include "tensor/op_profile.h"
#include "tensor/ops.h"
#include "tensor/random.h"

#ifdef GLANCE_WITH_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/device_query.h"
#endif

using namespace glance;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Waits for queued GPU work (no-op on the CPU), so that a host clock read after it covers the work.
void sync_device(const Device& device) {
#ifdef GLANCE_WITH_CUDA
  if (device.is_cuda()) glance::cuda::synchronize();
#else
  (void)device;
#endif
}

void usage() {
  std::fprintf(stderr,
               "usage: bench_train_step [--steps N] [--warmup N] [--threads N] [--profile]\n"
               "                        [--attention device|reference|tiled|fused|fused_deterministic|fused_bf16] (or --attention-kernel)\n"
               "                        [--device cpu|cuda] [--tf32] [--policy dense|rlt] [--data noise|synthetic]\n"
               "                        [--preset tiny|small|base] [--batch N] [--forward-only] [--no-fusion]\n");
}

// ---- --profile: one step's time by kind of op, and its FLOP/s against the GEMM's ----

constexpr int64_t kProfileSteps = 3;  // profiled after the timed steps; the figures are their mean

// The sum over kProfileSteps profiled steps.
struct StepProfile {
  op_profile::Totals kinds;  // forward and backward only: the optimizer has its own line
  double forward = 0, backward = 0, optimizer = 0;  // seconds
  int64_t flops = 0;                                // matmul and attention products
  void add(const op_profile::Totals& t, double f, double b, double o, int64_t fl) {
    for (int k = 0; k < kOpKinds; ++k) kinds.seconds[k] += t.seconds[k], kinds.calls[k] += t.calls[k];
    forward += f, backward += b, optimizer += o, flops += fl;
  }
};

// GFLOP/s of glance's SGEMM on a square product of `n` (best of a few), on the step's threads: what the step's
// products could reach if nothing but the GEMM ran.
double sgemm_gflops(int64_t n) {
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now();
    cpu::sgemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, now() - t0);
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

// Prints the breakdown (a table on stderr, one JSON line on stdout before the result line):
//   kinds          time inside the CPU backend's methods by kind (tensor/op_profile.h), forward + backward
//   optimizer      the whole optimizer step (its ops included)
//   autograd_other forward + backward wall time not inside any backend method: building and walking the
//                  graph, shape and stride logic, allocation outside a kernel
void report_profile(const StepProfile& p, int64_t threads) {
  const double n = double(kProfileSteps);
  const double step_s = (p.forward + p.backward + p.optimizer) / n;
  double in_kinds = 0;
  for (int k = 0; k < kOpKinds; ++k) in_kinds += p.kinds.seconds[k] / n;
  const double other = (p.forward + p.backward) / n - in_kinds;
  const double step_gflop = double(p.flops) / n / 1e9, step_gflops = step_gflop / step_s;
  const int64_t gemm_n = 1536;
  const double peak = sgemm_gflops(gemm_n);
  std::fprintf(stderr, "profile (mean of %lld steps): forward %.1f ms, backward %.1f ms, optimizer %.1f ms\n",
               (long long)kProfileSteps, 1e3 * p.forward / n, 1e3 * p.backward / n, 1e3 * p.optimizer / n);
  std::fprintf(stderr, "  %-16s %9s %7s %8s\n", "kind", "ms/step", "share", "calls");
  std::string json = "{\"bench\":\"train_step_profile\",\"unit\":\"ms/step\",\"steps\":" + std::to_string(kProfileSteps) +
                     ",\"threads\":" + std::to_string(threads) + ",\"ms\":{";
  char buf[256];
  auto line = [&](const char* name, double s, int64_t calls, bool first) {
    std::fprintf(stderr, "  %-16s %9.2f %6.1f%% %8lld\n", name, 1e3 * s, 100.0 * s / step_s, (long long)calls);
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.2f", first ? "" : ",", name, 1e3 * s);
    json += buf;
  };
  for (int k = 0; k < kOpKinds; ++k) {
    if (static_cast<OpKind>(k) == OpKind::Optimizer) continue;  // the optimizer line below holds it
    line(op_kind_name(static_cast<OpKind>(k)), p.kinds.seconds[k] / n, p.kinds.calls[k] / kProfileSteps, k == 0);
  }
  line("optimizer", p.optimizer / n, 0, false);
  line("autograd_other", other, 0, false);
  std::fprintf(stderr, "  step %.1f ms, %.2f GFLOP in products -> %.1f GFLOP/s; SGEMM %lld^3 %.1f GFLOP/s; "
               "step at %.1f%% of the SGEMM's rate\n", 1e3 * step_s, step_gflop, step_gflops, (long long)gemm_n, peak,
               100.0 * step_gflops / peak);
  std::snprintf(buf, sizeof buf,
                "},\"step_ms\":%.2f,\"step_gflop\":%.3f,\"step_gflops\":%.1f,\"sgemm_n\":%lld,\"sgemm_gflops\":%.1f,"
                "\"fraction_of_sgemm\":%.3f}",
                1e3 * step_s, step_gflop, step_gflops, (long long)gemm_n, peak, step_gflops / peak);
  json += buf;
  std::printf("%s\n", json.c_str());
}

int run(int argc, char** argv) {
  int64_t steps = 20, warmup = 3, threads = 2, batch = 8;
  bool profile = false, tf32 = false, forward_only = false;
  std::string attention = "device", device_name = "cpu", policy = "dense", data, preset = "small";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoll(argv[++i]);
    else if (a == "--profile") profile = true;
    else if (a == "--forward-only") forward_only = true;
    else if (a == "--no-fusion") nn::set_fusion_enabled(false);
    else if ((a == "--attention" || a == "--attention-kernel") && i + 1 < argc) attention = argv[++i];
    else if (a == "--device" && i + 1 < argc) device_name = argv[++i];
    else if (a == "--tf32") tf32 = true;
    else if (a == "--policy" && i + 1 < argc) policy = argv[++i];
    else if (a == "--data" && i + 1 < argc) data = argv[++i];
    else if (a == "--preset" && i + 1 < argc) preset = argv[++i];
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else {
      usage();
      return 2;
    }
  }
  if (data.empty()) data = policy == "rlt" ? "synthetic" : "noise";
  if ((policy != "dense" && policy != "rlt") || (data != "noise" && data != "synthetic") ||
      (preset != "tiny" && preset != "small" && preset != "base") || steps < 1 || batch < 1) {
    usage();
    return 2;
  }
  if (forward_only && profile) {
    std::fprintf(stderr, "bench_train_step: --profile breaks down a training step; drop --forward-only\n");
    return 2;
  }
  if (policy == "rlt" && data == "noise") {
    std::fprintf(stderr, "bench_train_step: --policy rlt on noise would drop nothing; use --data synthetic\n");
    return 2;
  }
  Device device = Device::cpu();
  if (device_name == "cuda" || device_name.rfind("cuda:", 0) == 0) {
#ifdef GLANCE_WITH_CUDA
    if (!glance::cuda::available()) {
      std::fprintf(stderr, "bench_train_step: --device %s: no CUDA device\n", device_name.c_str());
      return 1;
    }
    device = parse_device(device_name);
    glance::cuda::set_allow_tf32(tf32);
#else
    std::fprintf(stderr, "bench_train_step: --device %s: this build has no CUDA backend (configure with -DGLANCE_CUDA=ON)\n",
                 device_name.c_str());
    return 1;
#endif
  } else if (device_name != "cpu") {
    usage();
    return 2;
  }
  if (tf32 && !device.is_cuda()) {
    std::fprintf(stderr, "bench_train_step: --tf32 is for --device cuda\n");
    return 2;
  }
  omp_set_num_threads(static_cast<int>(threads));

  rlt::ModelConfig config = rlt::model_preset(preset);  // small: 16 x 112 x 112, 2x16x16, dim 192, depth 4, 3 heads
  config.classes = 10;
  config.drop_path = 0.0;  // base has 0.1; the PyTorch reference has none (small has 0 already)
  config.attention_kernel = attention;
  manual_seed(0);
  rlt::RLTransformer model(config);
  if (device.is_cuda()) model.to(device);
  nn::AdamW optimizer(nn::decay_groups(model, 1e-3, 0.05));  // after the move: the moments live with the weights

  rlt::TokenizerConfig tok;
  tok.tubelet = config.tubelet, tok.patch = config.patch;
  tok.policy = policy == "rlt" ? rlt::DropPolicy::RLT : rlt::DropPolicy::Dense;
  std::vector<rlt::TokenizedClip> clips;
  if (data == "noise") {
    Generator gen(1);
    for (int64_t b = 0; b < batch; ++b) {
      clips.push_back(rlt::tokenize(normal({config.frames, 3, config.image_size, config.image_size}, 0, 1, DType::Float32, &gen), tok));
    }
  } else {
    rlt::SyntheticVideoConfig sv;
    sv.count = batch, sv.frames = config.frames, sv.size = config.image_size;
    sv.object_size = config.image_size / 4, sv.speed = static_cast<double>(config.image_size) / 56.0;
    rlt::SyntheticVideo video(sv);
    for (int64_t b = 0; b < batch; ++b) clips.push_back(rlt::tokenize(video.clip_tensor(b), tok));
  }
  const rlt::PackedClips packed = rlt::pack_clips(clips);
  std::vector<int64_t> label_values;
  for (int64_t b = 0; b < batch; ++b) label_values.push_back(b % config.classes);
  const Tensor tubelets = device.is_cuda() ? ops::to_device(packed.tubelets, device) : packed.tubelets;
  const Tensor labels = device.is_cuda() ? ops::to_device(ops::from_vector(label_values), device)
                                         : ops::from_vector(label_values);

  auto forward = [&]() -> Tensor { return model.forward(tubelets, packed.layout); };
  auto step = [&]() {
    if (forward_only) {
      autograd::NoGradGuard no_grad;
      const Tensor logits = forward();
      sync_device(device);
      return 0.0;  // no loss
    }
    Tensor logits = forward();
    Tensor loss = nn::cross_entropy(logits, labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    sync_device(device);
    return device.is_cuda() ? ops::to_device(loss, Device::cpu()).item() : loss.item();
  };
  for (int64_t i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int64_t i = 0; i < steps; ++i) {
    sync_device(device);
    const double t0 = now();
    const double loss = step();
    ms.push_back(1e3 * (now() - t0));
    std::fprintf(stderr, "step %lld: %.1f ms (loss %.4f)\n", (long long)i, ms.back(), loss);
  }
  if (profile) {
    auto profiled_step = [&](StepProfile& p) {
      sync_device(device);
      const int64_t flops0 = matmul_flops();
      const bool by_kind = device.is_cpu();  // host times of queued GPU work would mean nothing
      if (by_kind) op_profile::start();
      const double t0 = now();
      Tensor loss = nn::cross_entropy(forward(), labels);
      sync_device(device);
      const double t1 = now();
      optimizer.zero_grad();
      loss.backward();
      sync_device(device);
      const double t2 = now();
      const op_profile::Totals kinds = by_kind ? op_profile::stop() : op_profile::Totals{};
      optimizer.step();
      sync_device(device);
      const double t3 = now();
      p.add(kinds, t1 - t0, t2 - t1, t3 - t2, matmul_flops() - flops0);
    };
    StepProfile p;
    for (int64_t i = 0; i < kProfileSteps; ++i) profiled_step(p);
    report_profile(p, threads);
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2], best = sorted.front();
  const int64_t grid_tokens = config.grid().size();
  const std::string kase = "rlt_" + policy + "_d" + std::to_string(config.dim) + "_depth" + std::to_string(config.depth) +
                           "_h" + std::to_string(config.heads) + "_b" + std::to_string(batch) + "_n" +
                           std::to_string(grid_tokens) + (data == "synthetic" ? "_synthetic" : "") +
                           (forward_only ? "_forward" : "");
  std::printf(
      "{\"bench\":\"train_step\",\"case\":\"%s\",\"glance\":%.2f,\"min_ms\":%.2f,"
      "\"unit\":\"ms/step\",\"stat\":\"median\",\"steps\":%lld,\"threads\":%lld,\"tokens\":%lld,\"parameters\":%lld,"
      "\"attention\":\"%s\"",
      kase.c_str(), median, best, (long long)steps, (long long)threads, (long long)packed.layout.total_tokens(),
      (long long)model.parameter_count(), attention.c_str());
  if (device.is_cuda() || policy != "dense" || data != "noise" || preset != "small" || batch != 8 || forward_only) {
    // Fields added with the GPU runs (the CPU default line stays as it was).
    std::printf(",\"device\":\"%s\",\"tf32\":%s,\"policy\":\"%s\",\"data\":\"%s\",\"preset\":\"%s\",\"batch\":%lld,"
                "\"grid_tokens\":%lld,\"kept_fraction\":%.4f,\"clips_per_s\":%.1f,\"counts\":[",
                device.str().c_str(), tf32 ? "true" : "false", policy.c_str(), data.c_str(), preset.c_str(),
                (long long)batch, (long long)(grid_tokens * batch),
                double(packed.layout.total_tokens()) / double(grid_tokens * batch), 1e3 * double(batch) / median);
    for (int64_t b = 0; b < batch; ++b) std::printf("%s%lld", b ? "," : "", (long long)packed.layout.clip_tokens(b));
    std::printf("]");
  }
  std::printf("}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
}
