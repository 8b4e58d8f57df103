// No lost work: `glance train` killed with -9 resumes from its last --save-every checkpoint and ends exactly
// where an uninterrupted run ends (weights and metrics log bit for bit); SIGTERM finishes the step, saves and
// exits with status 3; a second signal exits at once; every output path is checked before any work. The tests
// start the glance program themselves and bound every wait.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nn/json.h"
#include "nn/safetensors.h"
#include "rlt/cli_testing.h"
#include "rlt/metrics_testing.h"

namespace {

using namespace glance;
using rlt::test_support::fresh_dir;
using rlt::test_support::metrics_without_timing;
using rlt::test_support::Output;
using rlt::test_support::run_glance;
namespace fs = std::filesystem;

// A tiny run: one block, batches of 8 from 32 built-in clips (4 steps per epoch).
std::vector<std::string> tiny_run(const fs::path& dir, const std::string& name, int64_t steps) {
  return {"train", "--depth", "1", "--batch-size", "8", "--train-clips", "32", "--val-clips", "8", "--no-progress",
          "--steps", std::to_string(steps), "--save", (dir / (name + ".safetensors")).string(),
          "--metrics", (dir / (name + ".jsonl")).string()};
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// glance started in the background, its output into `log`.
pid_t start_glance(std::vector<std::string> args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out == nullptr || ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) ::_exit(126);
    std::vector<char*> argv{const_cast<char*>(GLANCE_CLI)};
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(GLANCE_CLI, argv.data());
    ::_exit(127);
  }
  return pid;
}

int64_t line_count(const fs::path& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// Waits (at most `seconds`) until `path` has `lines` lines; false if the time ran out or `pid` ended first.
bool wait_for_lines(const fs::path& path, int64_t lines, pid_t pid, double seconds = 60) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (line_count(path) >= lines) return true;
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The exit status of `pid` (128 + signal when killed), waiting at most `seconds`; -1 if it had to be killed.
int wait_for_exit(pid_t pid, double seconds = 60) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::string text_of(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> tensor_bytes(const fs::path& path) {
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : nn::load_safetensors(path.string()).tensors) {
    out[name] = std::string(static_cast<const char*>(t.raw_data()), t.numel() * t.itemsize());
  }
  return out;
}

int64_t saved_step(const fs::path& path) { return std::stoll(nn::load_safetensors(path.string()).metadata.at("glance.step")); }

std::vector<std::string> temporaries_in(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

TEST(InterruptedRuns, KilledRunResumesFromItsLastPeriodicSaveBitExactly) {
  const fs::path dir = fresh_dir("killed");
  const int64_t steps = 16;
  std::vector<std::string> args = tiny_run(dir, "run", steps);
  args.insert(args.end(), {"--save-every", "3"});  // not a multiple of the 4 steps per epoch: mid-epoch saves
  const pid_t pid = start_glance(args, dir / "first.log");
  ASSERT_TRUE(wait_for_lines(dir / "run.jsonl", 7, pid)) << text_of(dir / "first.log");
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_for_exit(pid), 128 + SIGKILL);
  const int64_t killed_at = saved_step(dir / "run.safetensors");
  EXPECT_GE(killed_at, 6);  // the log had step 7, so the save of step 6 was done
  EXPECT_EQ(killed_at % 3, 0);
  ASSERT_LT(killed_at, steps) << "the run ended before it was killed: nothing to resume";

  // The same command with --load continues it; a run without interruption is the reference.
  std::vector<std::string> resume = args;
  resume.insert(resume.end(), {"--load", (dir / "run.safetensors").string()});
  const Output resumed = run_glance(joined(resume));
  ASSERT_EQ(resumed.status, 0) << resumed.text;
  EXPECT_NE(resumed.text.find("resumed from " + (dir / "run.safetensors").string() + " at step " + std::to_string(killed_at)),
            std::string::npos) << resumed.text;
  const Output straight = run_glance(joined(tiny_run(dir, "straight", steps)));
  ASSERT_EQ(straight.status, 0) << straight.text;

  EXPECT_EQ(tensor_bytes(dir / "run.safetensors"), tensor_bytes(dir / "straight.safetensors")) << "weights and moments";
  const std::vector<std::string> log = metrics_without_timing(dir / "run.jsonl");
  EXPECT_EQ(log, metrics_without_timing(dir / "straight.jsonl")) << "the continued log reads as one run";
  EXPECT_EQ(static_cast<int64_t>(log.size()), steps + 1);  // a line per step and the final evaluation
  EXPECT_TRUE(temporaries_in(dir).empty()) << temporaries_in(dir)[0];
  fs::remove_all(dir);
}

TEST(InterruptedRuns, SigtermFinishesTheStepSavesItAndExitsWithStatus3) {
  const fs::path dir = fresh_dir("sigterm");
  const pid_t pid = start_glance(tiny_run(dir, "run", 100000), dir / "run.log");
  ASSERT_TRUE(wait_for_lines(dir / "run.jsonl", 3, pid)) << text_of(dir / "run.log");
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_for_exit(pid), 3) << text_of(dir / "run.log");
  // The step under way when the signal came was finished, logged and saved.
  const int64_t lines = line_count(dir / "run.jsonl");
  EXPECT_GE(lines, 3);
  EXPECT_EQ(saved_step(dir / "run.safetensors"), lines);
  EXPECT_NE(text_of(dir / "run.log").find("continue with --load " + (dir / "run.safetensors").string()), std::string::npos)
      << text_of(dir / "run.log");
  EXPECT_TRUE(temporaries_in(dir).empty());
  fs::remove_all(dir);
}

TEST(InterruptedRuns, ASecondSignalExitsAtOnce) {
  const fs::path dir = fresh_dir("twice");
  // Steps of 64 clips through the three blocks of the tiny preset: long enough (about 0.1 s on 2 cores) for the
  // second signal to come while the first one waits for the step to end.
  std::vector<std::string> args = tiny_run(dir, "run", 100000);
  args.insert(args.end(), {"--depth", "3", "--batch-size", "64", "--train-clips", "128"});
  const pid_t pid = start_glance(args, dir / "run.log");
  ASSERT_TRUE(wait_for_lines(dir / "run.jsonl", 1, pid)) << text_of(dir / "run.log");
  ::kill(pid, SIGINT);
  // A second signal sent before the first is handled would merge with it: wait for the handler's note.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (text_of(dir / "run.log").find("stopping after this step") == std::string::npos &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for_exit(pid), 128 + SIGINT) << text_of(dir / "run.log");
  fs::remove_all(dir);
}

TEST(InterruptedRuns, OutputPathsAreCheckedBeforeAnyWork) {
  const fs::path dir = fresh_dir("outputs");
  std::ofstream(dir / "plain_file") << "not a folder";
  const std::string under_a_file = (dir / "plain_file" / "x").string();
  for (const std::string option : {"save", "metrics"}) {
    const Output out = run_glance("train --steps 1 --" + option + " " + under_a_file);
    EXPECT_EQ(out.status, 1) << out.text;
    EXPECT_NE(out.text.find("--" + option + " " + under_a_file + ": cannot create the folder"), std::string::npos) << out.text;
    EXPECT_EQ(out.text.find("data:"), std::string::npos) << "work began:\n" << out.text;
  }
  const Output demo = run_glance("demo --steps 1 --out " + under_a_file);
  EXPECT_EQ(demo.status, 1) << demo.text;
  EXPECT_NE(demo.text.find("--out " + under_a_file), std::string::npos) << demo.text;
  EXPECT_EQ(demo.text.find("data:"), std::string::npos) << demo.text;
  // A folder given for a file is named too.
  const Output folder = run_glance("train --steps 1 --save " + dir.string());
  EXPECT_NE(folder.text.find("is a folder"), std::string::npos) << folder.text;
  EXPECT_TRUE(temporaries_in(dir).empty());
  fs::remove_all(dir);
}

}  // namespace
