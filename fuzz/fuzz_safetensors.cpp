// Fuzzing the safetensors reader (nn/safetensors.h), which promises to check everything a hostile file could
// get wrong before touching a byte of data. Beyond "no crash": a file it accepts, written again by glance and
// read back, gives the same tensors (names, dtypes, shapes, bytes) and the same metadata.
#include <cstdint>
#include <cstring>
#include <exception>

#include "fuzz_input.h"
#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace glance;
  static const fuzz::InputFile input("safetensors", ".safetensors");
  nn::SafetensorsFile file;
  try {
    file = nn::load_safetensors(input.write(data, size));
  } catch (const std::exception&) {
    return 0;  // refused with a message
  }
  const std::string copy = input.sibling(".again");
  nn::save_safetensors(copy, file.tensors, file.metadata);
  const nn::SafetensorsFile again = nn::load_safetensors(copy);
  std::remove(copy.c_str());
  fuzz::fuzz_check(again.metadata == file.metadata, "safetensors: the metadata changed in a round trip");
  fuzz::fuzz_check(again.tensors.size() == file.tensors.size(), "safetensors: tensors lost in a round trip");
  for (const auto& [name, t] : file.tensors) {
    const auto it = again.tensors.find(name);
    fuzz::fuzz_check(it != again.tensors.end(), "safetensors: a tensor's name changed in a round trip");
    const Tensor& u = it->second;
    fuzz::fuzz_check(u.dtype() == t.dtype() && u.shape() == t.shape(), "safetensors: a dtype or shape changed");
    const size_t nbytes = static_cast<size_t>(t.numel()) * t.itemsize();  // both contiguous, on the CPU
    fuzz::fuzz_check(nbytes == 0 || std::memcmp(u.raw_data(), t.raw_data(), nbytes) == 0,
                     "safetensors: a tensor's bytes changed in a round trip");
  }
  return 0;
}
