// A frame-folder dataset is checked before a run uses it: `glance check-data` names every clip too short for
// the sampling, every frame that is not a readable image and every frame of another size than its clip's
// first, and `glance train --data` refuses such a dataset before training instead of stopping when a batch
// first meets the bad clip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "nn/json.h"
#include "rlt/cli_testing.h"
#include "rlt/image.h"

namespace {

using namespace glance;
using rlt::test_support::fresh_dir;
using rlt::test_support::last_line;
using rlt::test_support::Output;
using rlt::test_support::run_glance;
namespace fs = std::filesystem;

// `count` grey frames of side x side in root/<class_name>/<clip>/.
fs::path write_clip(const fs::path& root, const std::string& class_name, const std::string& clip, int count, int side = 32) {
  const fs::path dir = root / class_name / clip;
  fs::create_directories(dir);
  for (int f = 0; f < count; ++f) {
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", f + 1);
    rlt::save_png((dir / name).string(), rlt::Image(side, side, 90));
  }
  return dir;
}

TEST(CheckData, AGoodDatasetPassesWithItsCounts) {
  const fs::path root = fresh_dir("check_data_good");
  write_clip(root, "left", "a", 8), write_clip(root, "left", "b", 9), write_clip(root, "right", "c", 8);
  const Output out = run_glance("check-data " + root.string() + " --frames-per-clip 4 --interval 2");
  ASSERT_EQ(out.status, 0) << out.text;
  const nn::Json j = nn::Json::parse(last_line(out.text));
  EXPECT_EQ(j["classes"].as_int64(), 2);
  EXPECT_EQ(j["clips"].as_int64(), 3);
  EXPECT_EQ(j["frames"].as_int64(), 25);
  EXPECT_EQ(j["problems"].as_int64(), 0);
  fs::remove_all(root);
}

TEST(CheckData, EveryProblemIsNamedAndTrainingRefusesTheDataBeforeItStarts) {
  const fs::path root = fresh_dir("check_data_bad");
  write_clip(root, "left", "fine", 8);
  const fs::path short_clip = write_clip(root, "left", "short", 6);   // 4 frames every 2 need 7
  const fs::path broken = write_clip(root, "right", "broken", 8);
  std::ofstream(broken / "00003.png") << "not a png";
  const fs::path mixed = write_clip(root, "right", "mixed", 8);
  rlt::save_png((mixed / "00005.png").string(), rlt::Image(16, 16, 90));

  const Output out = run_glance("check-data " + root.string() + " --frames-per-clip 4 --interval 2");
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_NE(out.text.find("clip folder '" + short_clip.string() + "' has 6 frames; a clip of 4 frames every 2 needs 7"),
            std::string::npos) << out.text;
  EXPECT_NE(out.text.find((broken / "00003.png").string()), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("frame '" + (mixed / "00005.png").string() + "' is 16 x 16"), std::string::npos) << out.text;
  EXPECT_EQ(nn::Json::parse(last_line(out.text))["problems"].as_int64(), 3);

  // glance train on the same data stops before any work, naming the option, the root and the first problem.
  const Output train = run_glance("train --data " + root.string() + " --frames 4 --interval 2 --size 32 --steps 1 "
                                  "--metrics ''");
  EXPECT_EQ(train.status, 1) << train.text;
  EXPECT_NE(train.text.find("--data " + root.string() + ": 3 problem(s)"), std::string::npos) << train.text;
  EXPECT_EQ(train.text.find("model:"), std::string::npos) << "training began:\n" << train.text;
  fs::remove_all(root);
}

TEST(CheckData, FramesOverTheSizeLimitAreNamedWithTheOption) {
  const fs::path root = fresh_dir("check_data_limit");
  const fs::path clip = write_clip(root, "left", "a", 8);
  write_clip(root, "right", "b", 8);
  EXPECT_EQ(run_glance("check-data " + root.string() + " --frames-per-clip 4 --interval 2").status, 0);
  const Output out = run_glance("check-data " + root.string() + " --frames-per-clip 4 --interval 2 --max-frame-side 31");
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_NE(out.text.find((clip / "00001.png").string() + "': size 32 x 32 (height x width) is over the frame-size "
                          "limit of 31 pixels per side (--max-frame-side"), std::string::npos) << out.text;
  EXPECT_EQ(nn::Json::parse(last_line(out.text))["problems"].as_int64(), 16);
  // train runs the same check first; tokenize (and predict) refuse the first frame over the limit.
  const Output train = run_glance("train --data " + root.string() + " --frames 4 --interval 2 --size 32 --steps 1 "
                                  "--metrics '' --max-frame-side 31");
  EXPECT_EQ(train.status, 1) << train.text;
  EXPECT_NE(train.text.find("--max-frame-side"), std::string::npos) << train.text;
  EXPECT_EQ(train.text.find("model:"), std::string::npos) << "training began:\n" << train.text;
  const Output tokenize = run_glance("tokenize " + clip.string() + " --frames-per-clip 4 --patch 8 --max-frame-side 31");
  EXPECT_EQ(tokenize.status, 1) << tokenize.text;
  EXPECT_NE(tokenize.text.find("32 x 32 (height x width) is over the frame-size limit of 31"), std::string::npos)
      << tokenize.text;
  EXPECT_NE(run_glance("check-data " + root.string() + " --max-frame-side 0").text.find("--max-frame-side"),
            std::string::npos);
  fs::remove_all(root);
}

TEST(CheckData, APngWithABadCrcIsNamedWithItsChunk) {
  const fs::path root = fresh_dir("check_data_crc");
  write_clip(root, "left", "a", 8);
  const fs::path clip = write_clip(root, "right", "b", 8);
  const fs::path frame = clip / "00004.png";
  std::string bytes;
  {
    std::ifstream in(frame, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  bytes[32] ^= 0x01;  // the last byte of the IHDR chunk's CRC (signature 8 + length 4 + type 4 + data 13 = byte 29)
  std::ofstream(frame, std::ios::binary) << bytes;
  const Output out = run_glance("check-data " + root.string() + " --frames-per-clip 4 --interval 2");
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_NE(out.text.find(frame.string() + "': PNG chunk 1 'IHDR' (at byte 8) has the CRC"), std::string::npos)
      << out.text;
  EXPECT_EQ(nn::Json::parse(last_line(out.text))["problems"].as_int64(), 1);
  fs::remove_all(root);
}

}  // namespace
