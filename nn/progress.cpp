#include "nn/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace glance::nn {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--:--";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

ProgressBar::ProgressBar(int64_t total_steps, std::string unit, std::ostream& out, int interactive, int64_t plain_every)
    : total_(total_steps), unit_(std::move(unit)), out_(out),
      interactive_(interactive < 0 ? ::isatty(STDOUT_FILENO) != 0 : interactive != 0),
      plain_every_(plain_every > 0 ? plain_every : 1), start_(std::chrono::steady_clock::now()) {}

double ProgressBar::items_per_second() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? static_cast<double>(items_) / elapsed : 0.0;
}

std::string ProgressBar::line(int64_t step, double loss, double accuracy) const {
  constexpr int width = 20;
  int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(total_ - step) : -1;
  char buf[256];
  std::snprintf(buf, sizeof buf, "[%s] %lld/%lld  loss %.4f  acc %.3f  %.1f %s/s  ETA %s", bar.c_str(),
                static_cast<long long>(step), static_cast<long long>(total_), loss, accuracy, items_per_second(),
                unit_.c_str(), format_duration(eta).c_str());
  return buf;
}

void ProgressBar::update(int64_t step, int64_t items, double loss, double accuracy) {
  items_ += items;
  last_step_ = step;
  last_loss_ = loss;
  last_accuracy_ = accuracy;
  if (interactive_) {
    out_ << '\r' << line(step, loss, accuracy) << "\033[K" << std::flush;  // redraw, clear the rest
  } else if (step % plain_every_ == 0 || step == total_) {
    out_ << line(step, loss, accuracy) << '\n' << std::flush;
  }
}

void ProgressBar::finish() {
  if (interactive_) out_ << '\n' << std::flush;
  else if (last_step_ % plain_every_ != 0 && last_step_ != total_) out_ << line(last_step_, last_loss_, last_accuracy_) << '\n';
}

}  // namespace glance::nn
