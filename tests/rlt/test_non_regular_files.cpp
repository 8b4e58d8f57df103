// Every reader of glance refuses what is not a regular file, with a message naming the path and what it is,
// and never waits: a FIFO (named pipe) with no writer, a character device (/dev/zero, which never ends) and a
// folder, given to each reader in turn (tensor/regular_file.h). The outputs of a run are checked the same way
// before it starts.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "error_text.h"
#include "nn/atomic_file.h"
#include "nn/linear.h"
#include "nn/metrics_log.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/cli_testing.h"
#include "rlt/convert.h"
#include "rlt/data_check.h"
#include "rlt/frames.h"
#include "rlt/image.h"
#include "rlt/run_config.h"
#include "tensor/npy.h"
#include "tensor/ops.h"
#include "tensor/regular_file.h"

namespace {

using namespace glance;
using rlt::test_support::Contains;
using rlt::test_support::error_of;
namespace fs = std::filesystem;

// While alive, keeps `fifo` from blocking anyone, so that code which opens a FIFO fails its test instead of
// hanging it: it holds the FIFO open for reading (a writer's open() returns at once, and its small writes fit the
// pipe's buffer), and every 20 ms opens it for writing and closes it again (a reader blocked in open() returns
// and reads an empty file).
class FifoUnblocker {
 public:
  explicit FifoUnblocker(std::string fifo)
      : fifo_(std::move(fifo)), read_end_(::open(fifo_.c_str(), O_RDONLY | O_NONBLOCK)), thread_([this] {
          while (!done_) {
            const int fd = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
            if (fd >= 0) ::close(fd);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }) {}
  ~FifoUnblocker() {
    done_ = true;
    thread_.join();
    if (read_end_ >= 0) ::close(read_end_);
  }

 private:
  std::string fifo_;
  int read_end_ = -1;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class NonRegularFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("glance_nonregular_" + std::to_string(getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "a_folder");
    fifo_ = (dir_ / "pipe").string();
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    // /dev/zero through a link of the test's own: code that writes to the path (if a check were missing) then
    // replaces the link, never the device itself.
    zero_ = (dir_ / "zero").string();
    fs::create_symlink("/dev/zero", zero_);
    unblocker_ = std::make_unique<FifoUnblocker>(fifo_);
  }
  void TearDown() override {
    unblocker_.reset();
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // `read` refuses a FIFO, /dev/zero and a folder, each time naming the path and what it is.
  void expect_refused(const std::function<void(const std::string&)>& read) const {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {fifo_, "is a FIFO (named pipe), not a regular file"},
        {zero_, "is a character device, not a regular file"},
        {path("a_folder"), "is a folder, not a regular file"},
    };
    for (const auto& [file, what] : cases) {
      const std::string msg = error_of([&] { read(file); });
      EXPECT_TRUE(Contains(msg, file));
      EXPECT_TRUE(Contains(msg, what));
    }
  }

  fs::path dir_;
  std::string fifo_, zero_;
  std::unique_ptr<FifoUnblocker> unblocker_;
};

TEST_F(NonRegularFiles, TheSharedCheckSaysWhatAPathIs) {
  std::ofstream(path("plain")) << "x";
  fs::create_symlink(path("plain"), path("link"));
  EXPECT_EQ(regular_file_problem(path("plain")), "");
  EXPECT_EQ(regular_file_problem(path("link")), "");  // links are followed
  EXPECT_EQ(regular_file_problem(fifo_), "is a FIFO (named pipe), not a regular file");
  EXPECT_EQ(regular_file_problem(zero_), "is a character device, not a regular file");
  EXPECT_EQ(regular_file_problem(path("a_folder")), "is a folder, not a regular file");
  EXPECT_EQ(regular_file_problem(path("missing")), "does not exist");
}

TEST_F(NonRegularFiles, FrameReadersRefuseThem) {
  expect_refused([](const std::string& p) { rlt::load_image(p); });
  expect_refused([](const std::string& p) { rlt::image_size(p); });
  expect_refused([](const std::string& p) { rlt::load_clip({p}); });
}

TEST_F(NonRegularFiles, SafetensorsAndNpyReadersRefuseThem) {
  expect_refused([](const std::string& p) { nn::load_safetensors(p); });
  expect_refused([](const std::string& p) { load_npy(p); });
}

TEST_F(NonRegularFiles, CheckpointReadersRefuseThem) {
  expect_refused([](const std::string& p) { rlt::read_run_config(p); });
  expect_refused([](const std::string& p) {
    nn::Linear model(2, 2);
    nn::load_model_from_training_state(p, model);
  });
  // glance convert's reader takes a folder for a model folder; a FIFO or a device it refuses.
  for (const std::string& p : {fifo_, zero_}) {
    EXPECT_TRUE(Contains(error_of([&] { rlt::read_foreign_checkpoint(p); }), p + ": is a "));
  }
}

TEST_F(NonRegularFiles, AConvertedModelsConfigJsonMustBeARegularFile) {
  // A model folder (model.safetensors + config.json) whose config.json is a FIFO: refused, not skipped.
  const fs::path model = dir_ / "model";
  fs::create_directories(model);
  nn::save_safetensors((model / "model.safetensors").string(), {{"w", ops::zeros({2})}});
  ASSERT_EQ(::mkfifo((model / "config.json").c_str(), 0600), 0);
  FifoUnblocker unblock((model / "config.json").string());
  const std::string msg = error_of([&] { rlt::read_foreign_checkpoint(model.string()); });
  EXPECT_TRUE(Contains(msg, (model / "config.json").string()));
  EXPECT_TRUE(Contains(msg, "is a FIFO (named pipe), not a regular file"));
}

TEST_F(NonRegularFiles, TheMetricsLogAndOutputOptionsRefuseThem) {
  expect_refused([](const std::string& p) { nn::MetricsLog log(p); });
  expect_refused([](const std::string& p) { nn::MetricsLog log(p, 10); });  // a resumed run reads it first
  expect_refused([](const std::string& p) { nn::check_writable(p, "save"); });
  // Regular files and new paths are fine.
  EXPECT_NO_THROW(nn::check_writable(path("new/state.safetensors"), "save"));
  EXPECT_NO_THROW(nn::MetricsLog(path("m.jsonl")).write(nn::Json::object()));
}

TEST_F(NonRegularFiles, TheDatasetScanNamesAFifoOrDeviceAmongTheFrames) {
  // root/<class>/<clip>/: 4 good frames, then a FIFO and a link to /dev/zero named like frames.
  for (const std::string cls : {"left", "right"}) {
    const fs::path clip = dir_ / "root" / cls / "c";
    fs::create_directories(clip);
    for (int f = 1; f <= 4; ++f) rlt::save_png((clip / ("0000" + std::to_string(f) + ".png")).string(), rlt::Image(8, 8, 7));
  }
  const fs::path clip = dir_ / "root" / "right" / "c";
  const std::string fifo = (clip / "00005.png").string(), device = (clip / "00006.png").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoUnblocker unblock(fifo);
  fs::create_symlink("/dev/zero", device);
  EXPECT_EQ(rlt::list_frames(clip.string()).size(), 6u);  // listed, so that reading them fails naming them
  const rlt::DataCheck check = rlt::check_frame_folders((dir_ / "root").string(), {.frames_per_clip = 2, .interval = 1});
  ASSERT_EQ(check.problem_count, 2) << ::testing::PrintToString(check.problems);
  EXPECT_TRUE(Contains(check.problems[0], fifo));
  EXPECT_TRUE(Contains(check.problems[0], "is a FIFO (named pipe), not a regular file"));
  EXPECT_TRUE(Contains(check.problems[1], device));
  EXPECT_TRUE(Contains(check.problems[1], "is a character device, not a regular file"));
}

TEST_F(NonRegularFiles, TheGlanceProgramRefusesThemWithoutWaiting) {
  // The same checks seen by a user: check-data names the FIFO frame, train refuses a FIFO as --save or --metrics
  // and as --load, all before any work (run_glance bounds each run: a hang fails the test).
  using rlt::test_support::run_glance;
  const rlt::test_support::Output load = run_glance("predict " + path("a_folder") + " --load " + fifo_);
  EXPECT_EQ(load.status, 1) << load.text;
  EXPECT_TRUE(Contains(load.text, fifo_ + ": is a FIFO (named pipe), not a regular file"));
  const rlt::test_support::Output save = run_glance("train --steps 1 --metrics '' --save " + fifo_);
  EXPECT_EQ(save.status, 1) << save.text;
  EXPECT_TRUE(Contains(save.text, "--save " + fifo_ + ": is a FIFO (named pipe), not a regular file"));
  const rlt::test_support::Output metrics = run_glance("train --steps 1 --metrics " + zero_);
  EXPECT_EQ(metrics.status, 1) << metrics.text;
  EXPECT_TRUE(Contains(metrics.text, "--metrics " + zero_ + ": is a character device, not a regular file"));
}

}  // namespace
