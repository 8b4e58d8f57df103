// Frame folders: listing and sorting frames (other files ignored), the labelled root/<class>/<clip>
// layout and each of its errors, clip sampling indices worked out by hand, too-short videos, and a clip
// whose frames differ in size.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "rlt/frames.h"
#include "error_text.h"

namespace {

using namespace glance;
using namespace glance::rlt;
namespace fs = std::filesystem;

using test_support::Contains;
using test_support::error_of;

class FrameFolders : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("glance_frames_" + std::to_string(getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // An (empty) file at dir_/rel, creating folders on the way. Listing never decodes a frame.
  std::string touch(const std::string& rel) const {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << "";
    return p.string();
  }
  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }
  fs::path dir_;
};

std::vector<std::string> names_of(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  for (const std::string& p : paths) names.push_back(fs::path(p).filename().string());
  return names;
}

TEST_F(FrameFolders, ListsFramesSortedByNameAndIgnoresOtherFiles) {
  for (const char* name : {"v/00010.png", "v/00002.png", "v/00001.JPG", "v/b.bmp", "v/a.jpeg", "v/notes.txt",
                           "v/.hidden.png", "v/frames.png.bak", "v/sub.png/inside.png"}) {
    touch(name);
  }
  const std::vector<std::string> frames = list_frames(path("v"));
  EXPECT_EQ(names_of(frames), (std::vector<std::string>{"00001.JPG", "00002.png", "00010.png", "a.jpeg", "b.bmp"}));
  EXPECT_EQ(frames[0], path("v/00001.JPG"));  // full paths
}

TEST_F(FrameFolders, UnpaddedNamesSortAsBytesNotNumbers) {
  for (const char* name : {"u/2.png", "u/10.png", "u/1.png"}) touch(name);
  // Byte order: '1' < '2', so 10.png comes before 2.png. Zero-padded names (%05d) avoid this.
  EXPECT_EQ(names_of(list_frames(path("u"))), (std::vector<std::string>{"1.png", "10.png", "2.png"}));
}

TEST_F(FrameFolders, ListFramesErrorsNameTheFolder) {
  touch("empty/readme.txt");
  std::string msg = error_of([&] { list_frames(path("empty")); });
  EXPECT_TRUE(Contains(msg, path("empty")));
  EXPECT_TRUE(Contains(msg, "no frames"));
  fs::create_directories(dir_ / "bare");
  EXPECT_TRUE(Contains(error_of([&] { list_frames(path("bare")); }), path("bare")));
  msg = error_of([&] { list_frames(path("missing")); });
  EXPECT_TRUE(Contains(msg, path("missing")));
  EXPECT_TRUE(Contains(msg, "not a folder"));
  touch("file.png");
  EXPECT_TRUE(Contains(error_of([&] { list_frames(path("file.png")); }), path("file.png")));
}

TEST_F(FrameFolders, ScansTheLabelledLayout) {
  touch("root/walk/clip_b/00001.png");
  touch("root/walk/clip_b/00002.png");
  touch("root/walk/clip_a/00001.png");
  touch("root/jump/only/00001.jpg");
  touch("root/jump/only/00002.jpg");
  touch("root/jump/only/00003.jpg");
  touch("root/README.txt");           // files beside the class folders are ignored
  touch("root/jump/labels.csv");      // ... and beside the clip folders
  fs::create_directories(dir_ / "root" / ".cache" / "x");  // hidden folders too

  const FrameFolderDataset ds(path("root"));
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"jump", "walk"}));
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.entry(0).dir, path("root/jump/only"));
  EXPECT_EQ(ds.entry(0).class_name, "jump");
  EXPECT_EQ(ds.entry(0).label, 0);
  EXPECT_EQ(ds.entry(0).frames.size(), 3u);
  EXPECT_EQ(ds.entry(1).dir, path("root/walk/clip_a"));
  EXPECT_EQ(ds.entry(1).label, 1);
  EXPECT_EQ(ds.entry(2).dir, path("root/walk/clip_b"));
  EXPECT_EQ(ds.entry(2).class_name, "walk");
  EXPECT_EQ(names_of(ds.entry(2).frames), (std::vector<std::string>{"00001.png", "00002.png"}));
  EXPECT_THROW(ds.entry(3), std::out_of_range);
  EXPECT_THROW(ds.entry(-1), std::out_of_range);
}

TEST_F(FrameFolders, LabelledLayoutErrorsNameThePath) {
  std::string msg = error_of([&] { FrameFolderDataset ds(path("nowhere")); });
  EXPECT_TRUE(Contains(msg, path("nowhere")));

  touch("flat/00001.png");  // frames straight in the root: no class folders
  msg = error_of([&] { FrameFolderDataset ds(path("flat")); });
  EXPECT_TRUE(Contains(msg, path("flat")));
  EXPECT_TRUE(Contains(msg, "no class folders"));

  touch("noclips/cats/00001.png");  // a class folder holding frames, not clip folders
  msg = error_of([&] { FrameFolderDataset ds(path("noclips")); });
  EXPECT_TRUE(Contains(msg, path("noclips/cats")));
  EXPECT_TRUE(Contains(msg, "no clip folders"));

  touch("noframes/cats/good/00001.png");
  touch("noframes/cats/bad/notes.txt");
  msg = error_of([&] { FrameFolderDataset ds(path("noframes")); });
  EXPECT_TRUE(Contains(msg, path("noframes/cats/bad")));
  EXPECT_TRUE(Contains(msg, "no frames"));
}

TEST(ClipSamplingIndices, WindowsByHand) {
  const ClipSampling s{3, 2};  // 3 frames, every 2nd
  EXPECT_EQ(window(s), 6);
  EXPECT_EQ(clip_span(s), 5);  // frames 0, 2, 4
  EXPECT_EQ(num_windows(0, s), 0);
  EXPECT_EQ(num_windows(5, s), 0);
  EXPECT_EQ(num_windows(6, s), 1);
  EXPECT_EQ(num_windows(11, s), 1);
  EXPECT_EQ(num_windows(12, s), 2);
  EXPECT_EQ(window_frame_indices(s, 0), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(window_frame_indices(s, 1), (std::vector<int64_t>{6, 8, 10}));
  EXPECT_EQ(window_frame_indices(s, 2), (std::vector<int64_t>{12, 14, 16}));

  const ClipSampling d;  // the defaults: 16 frames every 4
  EXPECT_EQ(window(d), 64);
  EXPECT_EQ(clip_span(d), 61);
  EXPECT_EQ(num_windows(300, d), 4);
  EXPECT_EQ(window_frame_indices(d, 1).front(), 64);
  EXPECT_EQ(window_frame_indices(d, 1).back(), 124);
}

TEST(ClipSamplingIndices, RandomTrainingClip) {
  const ClipSampling s{4, 3};  // span 10; a 20-frame video: starts 0..10
  std::set<int64_t> starts;
  Generator gen(7);
  for (int i = 0; i < 400; ++i) {
    const std::vector<int64_t> idx = sample_clip_indices(20, s, gen);
    ASSERT_EQ(idx.size(), 4u);
    for (size_t j = 1; j < idx.size(); ++j) EXPECT_EQ(idx[j] - idx[j - 1], 3);
    EXPECT_GE(idx.front(), 0);
    EXPECT_LE(idx.back(), 19);
    starts.insert(idx.front());
  }
  EXPECT_EQ(starts.size(), 11u);  // every start in [0, 10] comes up

  Generator a(42), b(42);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sample_clip_indices(100, s, a), sample_clip_indices(100, s, b));
  // A video exactly one clip long has one possible clip.
  EXPECT_EQ(sample_clip_indices(10, s, gen), (std::vector<int64_t>{0, 3, 6, 9}));
}

TEST(ClipSamplingIndices, EvenlySpacedEvaluationClips) {
  const ClipSampling s{4, 3};  // 20 frames: last start 10
  using Clips = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(eval_clip_indices(20, s, 1), (Clips{{5, 8, 11, 14}}));  // centred
  EXPECT_EQ(eval_clip_indices(20, s, 3), (Clips{{0, 3, 6, 9}, {5, 8, 11, 14}, {10, 13, 16, 19}}));
  // floor(c * 10 / 3) for c = 0..3: 0, 3, 6, 10.
  const Clips four = eval_clip_indices(20, s, 4);
  ASSERT_EQ(four.size(), 4u);
  EXPECT_EQ(four[1].front(), 3);
  EXPECT_EQ(four[2].front(), 6);
  EXPECT_EQ(four[3].front(), 10);
  EXPECT_THROW(eval_clip_indices(20, s, 0), std::invalid_argument);
}

TEST(ClipSamplingIndices, TooFewFramesNamesCountsAndSource) {
  const ClipSampling s{4, 3};  // needs 10 frames
  Generator gen(0);
  std::string msg = error_of([&] { sample_clip_indices(9, s, gen, "data/walk/clip_a"); });
  EXPECT_TRUE(Contains(msg, "data/walk/clip_a"));
  EXPECT_TRUE(Contains(msg, "9 frames"));
  EXPECT_TRUE(Contains(msg, "at least 10"));
  msg = error_of([&] { eval_clip_indices(3, s, 2, "short_video"); });
  EXPECT_TRUE(Contains(msg, "short_video"));
  EXPECT_TRUE(Contains(msg, "3 frames"));
  EXPECT_TRUE(Contains(error_of([&] { eval_clip_indices(3, s, 2); }), "at least 10"));
  EXPECT_THROW(window(ClipSampling{0, 4}), std::invalid_argument);
  EXPECT_THROW(clip_span(ClipSampling{16, 0}), std::invalid_argument);
}

TEST(ClipSamplingIndices, SelectFrames) {
  const std::vector<std::string> frames = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(select_frames(frames, {0, 2, 4}), (std::vector<std::string>{"a", "c", "e"}));
  EXPECT_THROW(select_frames(frames, {5}), std::out_of_range);
}

TEST_F(FrameFolders, LoadClipReadsFramesInOrder) {
  fs::create_directories(dir_ / "c");
  for (int i = 0; i < 3; ++i) save_png(path("c/0000" + std::to_string(i) + ".png"), Image(4, 6, static_cast<uint8_t>(10 * i)));
  const std::vector<Image> clip = load_clip(list_frames(path("c")));
  ASSERT_EQ(clip.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(clip[i].height, 4);
    EXPECT_EQ(clip[i].width, 6);
    EXPECT_EQ(clip[i].rgb[0], 10 * i);
  }
  EXPECT_THROW(load_clip({}), std::invalid_argument);
}

TEST_F(FrameFolders, MixedFrameSizesNameTheOddFile) {
  fs::create_directories(dir_ / "m");
  save_png(path("m/00000.png"), Image(8, 8));
  save_png(path("m/00001.png"), Image(8, 8));
  save_png(path("m/00002.png"), Image(6, 4));
  const std::string msg = error_of([&] { load_clip(list_frames(path("m"))); });
  EXPECT_TRUE(Contains(msg, path("m/00002.png")));
  EXPECT_TRUE(Contains(msg, "6 x 4"));
  EXPECT_TRUE(Contains(msg, "8 x 8"));
  // A frame that cannot be read is named too.
  std::ofstream(path("m/00003.png")) << "not a png";
  EXPECT_TRUE(Contains(error_of([&] { load_clip({path("m/00000.png"), path("m/00003.png")}); }), path("m/00003.png")));
}

}  // namespace
