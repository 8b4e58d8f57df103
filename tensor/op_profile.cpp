#include "tensor/op_profile.h"

#include <atomic>
#include <chrono>

namespace glance {

const char* op_kind_name(OpKind kind) {
  static const char* const names[kOpKinds] = {"gemm",     "attention", "layer_norm", "gelu",      "softmax", "copy",
                                              "elementwise", "reduce", "indexing",   "random",    "optimizer", "memory"};
  return names[static_cast<int>(kind)];
}

namespace op_profile {

namespace {

std::atomic<bool> g_active{false};
Totals g_totals;                           // written only by the profiled thread
thread_local bool t_profiled = false;      // this thread called start()
thread_local int t_depth = 0;              // scopes open on this thread
thread_local std::chrono::steady_clock::time_point t_entered;

}  // namespace

void start() {
  g_totals = Totals{};
  t_profiled = true;
  t_depth = 0;
  g_active.store(true, std::memory_order_relaxed);
}

Totals stop() {
  g_active.store(false, std::memory_order_relaxed);
  t_profiled = false;
  return g_totals;
}

bool active() { return g_active.load(std::memory_order_relaxed); }

bool Scope::enter() {
  if (!t_profiled) return false;
  if (t_depth++ == 0) {
    t_entered = std::chrono::steady_clock::now();
    return true;
  }
  --t_depth;  // nested: the outer scope counts this time
  return false;
}

void Scope::leave(OpKind kind) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_entered).count();
  --t_depth;
  g_totals.seconds[static_cast<int>(kind)] += s;
  ++g_totals.calls[static_cast<int>(kind)];
}

}  // namespace op_profile
}  // namespace glance
