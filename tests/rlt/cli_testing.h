// Running the glance program from a test, as a user runs it (shared by the tests in tests/rlt/ that start it).
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#ifndef GLANCE_CLI
#error "GLANCE_CLI (the path of the glance executable) must be defined by the build"
#endif

namespace glance::rlt::test_support {

struct Output {
  int status = 0;    // the exit code; -1 when the program was killed by a signal (a crash)
  std::string text;  // stdout and stderr together
};

// `glance <args>` through the shell; waits for it to end.
inline Output run_glance(const std::string& args) {
  // `timeout` bounds the wait: a run that hangs (or allocates without end) fails its test instead of the suite.
  const std::string command = "timeout 60 " + std::string(GLANCE_CLI) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  Output out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) out.text.append(buffer.data(), n);
  const int status = pclose(pipe.release());
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

inline std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

// An empty folder of the system's temporary directory, unique to this process.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("glance_cli_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace glance::rlt::test_support
