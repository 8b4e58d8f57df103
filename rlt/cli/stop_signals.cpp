#include "cli/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

namespace glance::cli {

namespace {

// A signal handler may touch only lock-free atomics and call only async-signal-safe functions (write, _exit).
std::atomic<bool> g_requested{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

struct sigaction g_previous_int, g_previous_term;

void on_signal(int signal) {
  if (g_requested.exchange(true)) _exit(128 + signal);  // the second one: at once
  g_signal.store(signal);
  const char note[] = "\nglance: stopping after this step and saving (signal again to quit at once)\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, note, sizeof(note) - 1);
}

}  // namespace

StopSignals::StopSignals() {
  g_requested.store(false);
  g_signal.store(0);
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a read or write the signal interrupts goes on
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

const std::atomic<bool>& StopSignals::requested() const { return g_requested; }
int StopSignals::signal_number() const { return g_signal.load(); }

}  // namespace glance::cli
