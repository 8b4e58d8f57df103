// SIGINT (Ctrl-C) and SIGTERM during `glance train`: the first asks the run to stop after the step it is in,
// write its checkpoint (--save) and exit with kExitStoppedBySignal; a second one exits at once (128 + the
// signal's number, as a shell reports a process killed by it), for a save that takes too long.
//
//   StopSignals signals;                         // handlers installed; the previous ones back at scope exit
//   options.stop_requested = &signals.requested();
#pragma once
#include <atomic>

namespace glance::cli {

// The exit status of a run stopped by SIGINT or SIGTERM after writing its checkpoint.
constexpr int kExitStoppedBySignal = 3;

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>& requested() const;
  int signal_number() const;  // the first signal received (0: none)
};

}  // namespace glance::cli
