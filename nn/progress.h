// A terminal progress bar for training loops:
//   [=========>          ] 450/1000  loss 0.4123  acc 0.871  212.4 clips/s  ETA 00:02:35
// On a terminal it redraws one line in place; when stdout is a file or a pipe (CI logs) it prints
// a plain line every `plain_every` steps and at the end instead.
#pragma once
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace glance::nn {

class ProgressBar {
 public:
  // `unit` names what throughput counts ("clips", "images"); `interactive` defaults to isatty(stdout).
  ProgressBar(int64_t total_steps, std::string unit, std::ostream& out, int interactive = -1, int64_t plain_every = 50);
  // Call after each step with how many items it processed and the metrics to show.
  void update(int64_t step, int64_t items, double loss, double accuracy);
  void finish();
  // The text of one update (what update prints, without the terminal control characters).
  std::string line(int64_t step, double loss, double accuracy) const;
  double items_per_second() const;

 private:
  int64_t total_;
  std::string unit_;
  std::ostream& out_;
  bool interactive_;
  int64_t plain_every_;
  int64_t items_ = 0;
  int64_t last_step_ = 0;
  double last_loss_ = 0, last_accuracy_ = 0;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "01:02:03"

}  // namespace glance::nn
