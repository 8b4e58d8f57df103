// The glance program itself, run as a user runs it: `glance tokenize` on frames written to disk must
// report the token counts worked out by hand below, and bad input must fail with a message, not a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "nn/json.h"
#include "rlt/cli_testing.h"
#include "rlt/image.h"

namespace {

using namespace glance;
using rlt::test_support::fresh_dir;
using rlt::test_support::last_line;
using rlt::test_support::Output;

Output run(const std::string& args) { return rlt::test_support::run_glance(args); }

// 32 frames of 64 x 64 grey. In the first 16 frames a white 16 x 16 block sits in patch row 1, column
// (f / 2) % 4 (it jumps one patch every tubelet of 2 frames); in the last 16 frames it stays put.
void write_block_video(const std::filesystem::path& dir) {
  for (int f = 0; f < 32; ++f) {
    rlt::Image im(64, 64, 128);
    const int column = f < 16 ? (f / 2) % 4 : 0;
    for (int y = 16; y < 32; ++y)
      for (int x = column * 16; x < column * 16 + 16; ++x) std::fill(im.at(y, x), im.at(y, x) + 3, uint8_t(255));
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.png", f + 1);
    rlt::save_png((dir / name).string(), im);
  }
}

TEST(Cli, TokenizeMatchesHandCounts) {
  const auto dir = fresh_dir("tokenize");
  write_block_video(dir);
  const Output out = run("tokenize " + dir.string() + " --frames-per-clip 16 --interval 1 --tau 0.1 --patch 16 "
                         "--tubelet 2 --size 64 --json");
  ASSERT_EQ(out.status, 0) << out.text;
  const nn::Json j = nn::Json::parse(last_line(out.text));
  // Two windows of 16 frames, each an 8 x 4 x 4 grid: 256 tubelets.
  // Window 0: all 16 of t = 0, then at each of the 7 later steps the block leaves one patch and enters
  // another: 16 + 7 * 2 = 30 kept. Window 1 is still: 16 kept. Every location's runs add up to 8 steps,
  // so the run lengths of a window sum to 128: mean run length = 256 / 46.
  EXPECT_EQ(j["clips"].as_int64(), 2);
  EXPECT_EQ(j["tokens"].as_int64(), 256);
  EXPECT_EQ(j["kept"].as_int64(), 46);
  EXPECT_NEAR(j["kept_fraction"].as_double(), 46.0 / 256.0, 1e-12);
  EXPECT_NEAR(j["mean_run_length"].as_double(), 256.0 / 46.0, 1e-12);
  std::filesystem::remove_all(dir);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* command : {"demo", "train", "eval", "predict", "tokenize", "visualize", "generate", "check-data"}) {
    const Output out = run(std::string(command) + " --help");
    EXPECT_EQ(out.status, 0) << command << ": " << out.text;
    EXPECT_NE(out.text.find("usage: glance " + std::string(command)), std::string::npos) << out.text;
  }
  const Output top = run("--help");
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.text.find("demo"), std::string::npos);
}

TEST(Cli, BadInputFailsWithAMessage) {
  const auto dir = fresh_dir("bad");
  Output out = run("tokenize " + (dir / "missing").string());
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("missing"), std::string::npos) << out.text;
  out = run("tokenize " + dir.string() + " --tau banana");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--tau expects a number, got 'banana'"), std::string::npos) << out.text;
  out = run("train --no-such-option 3");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("unknown option --no-such-option"), std::string::npos) << out.text;
  out = run("eval --load " + (dir / "nothing.safetensors").string());
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("nothing.safetensors"), std::string::npos) << out.text;
  out = run("frobnicate");
  EXPECT_EQ(out.status, 2);
  std::filesystem::remove_all(dir);
}

TEST(Cli, DeviceAndKernelMistakesAreNamedBeforeAnyWork) {
  Output out = run("train --device tpu --steps 1");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--device tpu: parse_device: 'tpu' is not a device (expected cpu, cuda or cuda:N)"),
            std::string::npos) << out.text;
  out = run("train --device cpu --attention-kernel fused --steps 1");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--attention-kernel fused runs on CUDA devices only"), std::string::npos) << out.text;
  // cuda:7 exists on no machine this suite runs on: with CUDA built and no GPU, or one GPU, or without CUDA,
  // the message names the device and the reason; no training starts.
  out = run("demo --device cuda:7 --steps 1");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--device cuda:7: "), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("data:"), std::string::npos) << "no work before the device is checked:\n" << out.text;
  // Mixed precision is a CUDA option; a precision the engine does not have is named.
  out = run("train --precision bf16 --steps 1");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--precision bf16 runs the attention core on tensor cores: it needs --device cuda"),
            std::string::npos) << out.text;
  out = run("demo --precision fp8 --steps 1");
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("--precision must be fp32, bf16 or fp16, got 'fp8'"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("data:"), std::string::npos) << out.text;
}

}  // namespace
