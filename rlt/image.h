// Images on disk: decoding PNG/JPG/BMP (stb_image) and writing PNG (stb_image_write).
//
//   Image: height x width pixels, 3 channels (RGB), uint8, stored [H, W, 3] row-major.
//
// Every frame glance reads becomes 3-channel RGB. Documented conversions: grayscale (1 channel) is
// replicated to R = G = B; grey+alpha and RGBA drop the alpha channel (no blending: video frames are
// opaque). Anything else fails with a message that names the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace glance::rlt {

struct Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3]

  Image() = default;
  Image(int64_t height, int64_t width, uint8_t fill = 0);
  uint8_t* at(int64_t y, int64_t x) { return rgb.data() + (y * width + x) * 3; }
  const uint8_t* at(int64_t y, int64_t x) const { return rgb.data() + (y * width + x) * 3; }
};

// The largest side of a frame glance decodes, unless told otherwise (--max-frame-side): a 4096 x 4096 frame
// is 48 MiB of RGB, and a header claiming more is far more often damaged or hostile than a video frame.
constexpr int64_t kDefaultMaxFrameSide = 4096;
// The highest limit that can be asked for: 16384 x 16384 x 3 is already 768 MiB per frame.
constexpr int64_t kMaxImageSide = 16384;

// Reads a PNG, JPEG or BMP file. Before any pixel is decoded, from the header: the size must be within
// 1..max_side pixels per side (max_side at most kMaxImageSide); and for a PNG, every chunk's CRC must
// match its bytes (rlt/png_check.h); for a JPEG, every Huffman table must fit stb_image's (rlt/jpeg_check.h). Throws std::runtime_error naming the file for: a missing file or one
// that is not a regular file (a FIFO, a device, a folder: tensor/regular_file.h), a format stb_image cannot
// decode or a truncated one, a size outside the limit (with the size and --max-frame-side), a bad CRC (with
// the chunk); std::invalid_argument for a max_side outside 1..kMaxImageSide.
Image load_image(const std::string& path, int64_t max_side = kDefaultMaxFrameSide);

// Size of an image file without decoding it, {height, width}, after the same checks load_image makes before
// decoding (the size limit; for a PNG, its CRCs, which reads the whole file). Same errors as load_image.
std::pair<int64_t, int64_t> image_size(const std::string& path, int64_t max_side = kDefaultMaxFrameSide);

// Writes an RGB PNG atomically (to a temporary file in the same folder, then renamed), so an interrupted
// write never leaves a half-written PNG under the final name. Throws naming the file on failure.
void save_png(const std::string& path, const Image& image);

}  // namespace glance::rlt
