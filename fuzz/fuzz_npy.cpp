// Fuzzing the .npy reader (tensor/npy.h): the header's Python-literal dict, versions 1 to 3, the dtypes glance
// holds, shapes whose size must not overflow, data that must be all there. Beyond "no crash": an array it
// accepts, written by glance and read back, is the same array (dtype, shape, bytes).
#include <cstdint>
#include <cstring>
#include <exception>

#include "fuzz_input.h"
#include "tensor/npy.h"
#include "tensor/ops.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace glance;
  static const fuzz::InputFile input("npy", ".npy");
  Tensor t;
  try {
    t = load_npy(input.write(data, size));
  } catch (const std::exception&) {
    return 0;  // refused with a message
  }
  const std::string copy = input.sibling(".again.npy");
  save_npy(copy, t);
  const Tensor u = load_npy(copy);
  std::remove(copy.c_str());
  fuzz::fuzz_check(u.dtype() == t.dtype() && u.shape() == t.shape(), ".npy: a dtype or shape changed in a round trip");
  const Tensor a = ops::contiguous(t), b = ops::contiguous(u);
  const size_t nbytes = static_cast<size_t>(a.numel()) * a.itemsize();
  fuzz::fuzz_check(nbytes == 0 || std::memcmp(a.raw_data(), b.raw_data(), nbytes) == 0,
                   ".npy: the elements changed in a round trip");
  return 0;
}
