// cudasim, SIM_POISON=1: glance's PoisonNewMemory (tensor/poison.h) for the whole run, so every new tensor
// storage, on either device, starts as 0xFF bytes (NaN in float32/float64, -1 in the integer types) and an
// element a kernel forgets to write shows in the parity tests.
#include <cstdlib>

#include "tensor/poison.h"

namespace {
const bool poison_from_env = [] {
  const char* e = std::getenv("SIM_POISON");
  if (e && *e == '1') glance::set_poison_new_memory(true);
  return true;
}();
}  // namespace
