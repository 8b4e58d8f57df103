// Fuzzing frame decoding as glance does it (rlt/image.h): a PNG's chunk CRCs checked first, then the size from
// the header against the frame-size limit, then stb_image's decoder (PNG, JPEG, BMP) into RGB. Beyond
// "no crash": a decoded frame has the size its header gave (image_size) and within the limit, and a PNG glance
// writes from it decodes to the same pixels.
#include <cstdint>
#include <exception>

#include "fuzz_input.h"
#include "rlt/image.h"

namespace {
// Small, so that no input can make the decoder allocate much: 256 x 256 x 3 bytes (the CRC check and the size
// check run before any decoding whatever the limit).
constexpr int64_t kFuzzMaxFrameSide = 256;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace glance;
  static const fuzz::InputFile input("frame", ".png");
  const std::string& path = input.write(data, size);
  std::pair<int64_t, int64_t> header{0, 0};
  try {
    header = rlt::image_size(path, kFuzzMaxFrameSide);
  } catch (const std::exception&) {
    // Refused before decoding; load_image must refuse it too (and not crash trying).
    try {
      rlt::load_image(path, kFuzzMaxFrameSide);
    } catch (const std::exception&) {
      return 0;
    }
    fuzz::fuzz_check(false, "frames: image_size refused a file that load_image decoded");
  }
  rlt::Image image;
  try {
    image = rlt::load_image(path, kFuzzMaxFrameSide);
  } catch (const std::exception&) {
    return 0;  // a header that passed, a body that did not decode: refused with a message
  }
  fuzz::fuzz_check(image.height == header.first && image.width == header.second,
                   "frames: the decoded size differs from the header's");
  fuzz::fuzz_check(image.height <= kFuzzMaxFrameSide && image.width <= kFuzzMaxFrameSide,
                   "frames: a frame over the limit was decoded");
  fuzz::fuzz_check(image.rgb.size() == static_cast<size_t>(image.height * image.width * 3),
                   "frames: the pixel buffer does not match the size");
  const std::string copy = input.sibling(".again.png");
  rlt::save_png(copy, image);
  const rlt::Image again = rlt::load_image(copy, kFuzzMaxFrameSide);
  std::remove(copy.c_str());
  fuzz::fuzz_check(again.rgb == image.rgb, "frames: a PNG glance wrote decodes to other pixels");
  return 0;
}
