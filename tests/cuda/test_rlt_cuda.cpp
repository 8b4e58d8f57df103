// The RLT pipeline on the GPU against the same pipeline on the CPU: the batch tokenizer (frames uploaded, scores,
// mask, run lengths and packing on the device) gives the CPU tokenizer's tokens exactly; a few training steps of
// the RLT model agree on both devices (losses step by step, final weights, evaluation); a checkpoint written from
// the GPU reloads on the CPU. Each test skips where no GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "cuda_testing.h"
#include "nn/json.h"
#include "nn/training_state.h"
#include "rlt/batch_tokenizer.h"
#include "rlt/clip_datasets.h"
#include "rlt/trainer.h"

namespace {

using namespace glance;
using namespace glance::rlt;
using namespace glance::cuda_testing;

SyntheticVideoConfig data_config(int64_t count, uint64_t seed) {
  SyntheticVideoConfig c;
  c.count = count, c.frames = 8, c.size = 32, c.object_size = 8, c.speed = 2, c.seed = seed;
  return c;
}

TEST(RltCuda, BatchTokenizerOnTheGpuEqualsTheCpuTokenizer) {
  GLANCE_REQUIRE_CUDA();
  SyntheticClips data(data_config(6, 4));
  std::vector<Tensor> clips;
  Generator augment(1);
  for (int64_t i = 0; i < data.size(); ++i) clips.push_back(data.train_clip(i, augment));
  const Tensor frames = ops::stack(clips, 0);  // [6, 8, 3, 32, 32]
  for (const DropPolicy policy : {DropPolicy::Dense, DropPolicy::RLT, DropPolicy::Random}) {
    for (const CompareMode mode : {CompareMode::Adjacent, CompareMode::Anchor}) {
      TokenizerConfig c;
      c.tubelet = 2, c.patch = 8, c.tau = 0.1, c.policy = policy, c.compare = mode;
      std::vector<Generator> on_cpu, on_gpu;
      for (int64_t b = 0; b < data.size(); ++b) on_cpu.emplace_back(b), on_gpu.emplace_back(b);
      const PackedClips want = tokenize_for(clips, c, on_cpu, Device::cpu());
      const PackedClips got = tokenize_batch(to_gpu(frames), c, &on_gpu);
      const std::string what = std::string(policy_name(policy)) + "/" + compare_name(mode);
      ASSERT_TRUE(got.tubelets.device().is_cuda()) << what;
      ASSERT_EQ(got.layout.offsets(), want.layout.offsets()) << what;
      EXPECT_EQ(got.layout.t().to_vector<int32_t>(), want.layout.t().to_vector<int32_t>()) << what;
      EXPECT_EQ(got.layout.h().to_vector<int32_t>(), want.layout.h().to_vector<int32_t>()) << what;
      EXPECT_EQ(got.layout.w().to_vector<int32_t>(), want.layout.w().to_vector<int32_t>()) << what;
      EXPECT_EQ(got.layout.length().to_vector<int32_t>(), want.layout.length().to_vector<int32_t>()) << what;
      EXPECT_EQ(got.tubelets.to_vector<float>(), want.tubelets.to_vector<float>()) << what << ": pixels are copied, not computed";
    }
  }
}

TrainOptions tiny_options(Device device, const std::string& kernel) {
  TrainOptions o;
  o.device = device;
  o.model.frames = 8, o.model.image_size = 32, o.model.tubelet = 2, o.model.patch = 8, o.model.classes = 8;
  o.model.dim = 32, o.model.depth = 2, o.model.heads = 2, o.model.attention_kernel = kernel;
  o.tokenizer.tubelet = 2, o.tokenizer.patch = 8, o.tokenizer.tau = 0.1;
  o.batch_size = 16, o.lr = 2e-3, o.label_smoothing = 0.1, o.progress = false, o.steps = 6;
  return o;
}

std::vector<double> losses_of(const std::string& metrics_path) {
  std::vector<double> loss;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) {
    const nn::Json j = nn::Json::parse(line);
    if (j.contains("loss")) loss.push_back(j["loss"].as_double());
  }
  return loss;
}

std::vector<float> flat_parameters(const RLTransformer& model) {
  std::vector<float> v;
  for (const Tensor& p : model.parameters()) {
    const std::vector<float> x = p.to_vector<float>();  // copies from the GPU when the model is there
    v.insert(v.end(), x.begin(), x.end());
  }
  return v;
}

// Six steps of RLT training (random labels aside, the real loop: loader, tokenizer, AdamW, clipping, schedule)
// on each device, then evaluation. Rounding differs between the devices (cuBLAS's summation order, the fused
// kernel's online softmax), so values agree to a tolerance, not bit for bit.
void expect_training_matches_cpu(const std::string& gpu_kernel) {
  const auto dir = std::filesystem::temp_directory_path() / ("glance_rlt_cuda_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SyntheticClips train(data_config(64, 3)), val(data_config(32, 5));

  TrainOptions on_cpu = tiny_options(Device::cpu(), "reference");
  on_cpu.metrics_path = (dir / "cpu.jsonl").string();
  TrainOptions on_gpu = tiny_options(Device::cuda(), gpu_kernel);
  on_gpu.metrics_path = (dir / "gpu.jsonl").string();
  on_gpu.save_path = (dir / "gpu.safetensors").string();
  Trainer cpu(on_cpu, train, &val), gpu(on_gpu, train, &val);
  const RunResult r_cpu = cpu.run(), r_gpu = gpu.run();

  EXPECT_EQ(r_gpu.kept_fraction, r_cpu.kept_fraction) << "the same tokens on both devices";
  const std::vector<double> l_cpu = losses_of(on_cpu.metrics_path), l_gpu = losses_of(on_gpu.metrics_path);
  ASSERT_EQ(l_cpu.size(), 6u);
  ASSERT_EQ(l_gpu.size(), 6u);
  for (size_t s = 0; s < 6; ++s) EXPECT_NEAR(l_gpu[s], l_cpu[s], 1e-3 * (1 + l_cpu[s])) << gpu_kernel << " step " << s + 1;
  const std::vector<float> w_cpu = flat_parameters(cpu.model()), w_gpu = flat_parameters(gpu.model());
  ASSERT_EQ(w_cpu.size(), w_gpu.size());
  double worst = 0;
  for (size_t i = 0; i < w_cpu.size(); ++i) worst = std::max(worst, std::fabs(double(w_gpu[i]) - double(w_cpu[i])));
  EXPECT_LT(worst, 2e-4) << gpu_kernel << ": largest weight difference after 6 steps (lr 2e-3)";
  EXPECT_NEAR(r_gpu.val.loss, r_cpu.val.loss, 1e-3 * (1 + r_cpu.val.loss)) << gpu_kernel;

  // The GPU's checkpoint reloads on the CPU and evaluates as the CPU-trained model's twin.
  RLTransformer reloaded(read_run_config(on_gpu.save_path).model);
  nn::load_model_from_training_state(on_gpu.save_path, reloaded);
  EXPECT_EQ(flat_parameters(reloaded), w_gpu);
  std::filesystem::remove_all(dir);
}

TEST(RltCuda, TrainingStepsMatchTheCpuWithTheReferenceKernel) {
  GLANCE_REQUIRE_CUDA();
  expect_training_matches_cpu("reference");
}

TEST(RltCuda, TrainingStepsMatchTheCpuWithTheFusedKernel) {
  GLANCE_REQUIRE_CUDA();
  expect_training_matches_cpu("fused");
}

// Mixed precision (--precision bf16 / fp16): the attention core in 16 bits, everything else fp32. Six steps
// follow the fp32 CPU run (losses to 2e-3 relative, twice the fp32 kernel's bound; the weight updates to 5%),
// fp16 with dynamic loss scaling as `glance train` runs it.
void expect_mixed_precision_follows_fp32(const std::string& gpu_kernel, bool loss_scaling) {
  SyntheticClips train(data_config(64, 3)), val(data_config(32, 5));
  const auto dir = std::filesystem::temp_directory_path() / ("glance_rlt_mixed_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  TrainOptions on_cpu = tiny_options(Device::cpu(), "reference");
  on_cpu.metrics_path = (dir / "cpu.jsonl").string();
  TrainOptions on_gpu = tiny_options(Device::cuda(), gpu_kernel);
  on_gpu.metrics_path = (dir / "gpu.jsonl").string();
  on_gpu.loss_scaling = loss_scaling;
  Trainer cpu(on_cpu, train, &val), gpu(on_gpu, train, &val);
  const RunResult r_cpu = cpu.run(), r_gpu = gpu.run();
  const std::vector<double> l_cpu = losses_of(on_cpu.metrics_path), l_gpu = losses_of(on_gpu.metrics_path);
  ASSERT_EQ(l_gpu.size(), 6u);
  double worst = 0;
  for (size_t s = 0; s < 6; ++s) {
    EXPECT_NEAR(l_gpu[s], l_cpu[s], 2e-3 * (1 + l_cpu[s])) << gpu_kernel << " step " << s + 1;
    worst = std::max(worst, std::fabs(l_gpu[s] - l_cpu[s]));
  }
  std::printf("[ info ] %s: losses %.4f .. %.4f on the CPU, worst difference %.3g\n", gpu_kernel.c_str(), l_cpu.front(),
              l_cpu.back(), worst);
  EXPECT_NEAR(r_gpu.val.loss, r_cpu.val.loss, 2e-3 * (1 + r_cpu.val.loss)) << gpu_kernel;
  // The updates, not single weights: AdamW divides each gradient by its running RMS, so an element whose
  // gradient is near zero can move by +-lr on either device; the whole update agrees to a few percent.
  const std::vector<float> w_cpu = flat_parameters(cpu.model()), w_gpu = flat_parameters(gpu.model()),
                           w_init = flat_parameters(Trainer(on_cpu, train, &val).model());
  double diff = 0, update = 0;
  for (size_t i = 0; i < w_cpu.size(); ++i) {
    diff += (double(w_gpu[i]) - w_cpu[i]) * (double(w_gpu[i]) - w_cpu[i]);
    update += (double(w_cpu[i]) - w_init[i]) * (double(w_cpu[i]) - w_init[i]);
  }
  const double relative = std::sqrt(diff / update);
  std::printf("[ info ] %s: |w_gpu - w_cpu| / |w_cpu - w_init| after 6 steps: %.3g\n", gpu_kernel.c_str(), relative);
  EXPECT_LT(relative, 5e-2) << gpu_kernel;
  if (loss_scaling) {
    EXPECT_GT(r_gpu.loss_scale, 0.0);
    std::printf("[ info ] %s: loss scale %g at the end, %lld steps skipped\n", gpu_kernel.c_str(), r_gpu.loss_scale,
                static_cast<long long>(r_gpu.skipped_steps));
  } else {
    EXPECT_EQ(r_gpu.loss_scale, 0.0);
  }
  std::filesystem::remove_all(dir);
}

TEST(RltCuda, Bf16AttentionTrainingFollowsTheFp32Run) {
  GLANCE_REQUIRE_CUDA();
  expect_mixed_precision_follows_fp32("fused_bf16", false);
}

TEST(RltCuda, Fp16AttentionTrainingWithLossScalingFollowsTheFp32Run) {
  GLANCE_REQUIRE_CUDA();
  expect_mixed_precision_follows_fp32("fused_fp16", true);
}

// A scale far too large (2^60) overflows fp16 in the attention backward on every step: each step is skipped
// (the weights stay exactly as initialised, AdamW's decay included) and the scale halves each time.
TEST(RltCuda, LossScalingSkipsStepsWhoseFp16GradientsOverflow) {
  GLANCE_REQUIRE_CUDA();
  SyntheticClips train(data_config(64, 3));
  TrainOptions o = tiny_options(Device::cuda(), "fused_fp16");
  o.steps = 4;
  o.loss_scaling = true;
  o.loss_scaler.init_scale = std::ldexp(1.0, 60);
  Trainer untouched(o, train, nullptr), trained(o, train, nullptr);
  const RunResult r = trained.run();
  EXPECT_EQ(r.skipped_steps, 4);
  EXPECT_EQ(r.loss_scale, std::ldexp(1.0, 56));
  EXPECT_EQ(flat_parameters(trained.model()), flat_parameters(untouched.model()));
}

}  // namespace
