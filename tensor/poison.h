// Poisoned memory, a testing aid: while on, every new tensor storage is filled with 0xFF bytes, which
// read as NaN in float32 and float64 (and -1 in the integer types). A kernel that forgets to write an
// element of its output then leaves a NaN there, which a value test cannot miss, instead of whatever
// zeros or stale values the allocator happened to return.
//
//   PoisonNewMemory poison;     // RAII: on for this scope
//   Tensor o = kernel(q, k, v); // every element of o must have been written
#pragma once

namespace glance {

void set_poison_new_memory(bool on);
bool poison_new_memory();

class PoisonNewMemory {
 public:
  PoisonNewMemory() : was_(poison_new_memory()) { set_poison_new_memory(true); }
  ~PoisonNewMemory() { set_poison_new_memory(was_); }
  PoisonNewMemory(const PoisonNewMemory&) = delete;
  PoisonNewMemory& operator=(const PoisonNewMemory&) = delete;

 private:
  bool was_;
};

}  // namespace glance
