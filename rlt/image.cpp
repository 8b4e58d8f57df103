// stb_image and stb_image_write are header-only libraries: this file is the one place that compiles
// their implementations.
#include "rlt/image.h"

#include "rlt/jpeg_check.h"
#include "rlt/png_check.h"
#include "tensor/regular_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_FAILURE_USERMSG
#include "stb_image.h"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

namespace glance::rlt {

Image::Image(int64_t h, int64_t w, uint8_t fill) : height(h), width(w), rgb(static_cast<size_t>(h * w * 3), fill) {
  if (h <= 0 || w <= 0) {
    throw std::invalid_argument("Image: size " + std::to_string(h) + " x " + std::to_string(w) + " must be positive");
  }
}

namespace {

std::runtime_error image_error(const std::string& path, const std::string& what) {
  return std::runtime_error("image '" + path + "': " + what);
}

// An open image file, closed on every path out.
struct OpenFile {
  FILE* f = nullptr;
  ~OpenFile() {
    if (f != nullptr) std::fclose(f);
  }
};

// stb_image reads through a FILE*; open it ourselves so a missing file gets the system's reason, and only a
// regular file at all (a FIFO would block the open, /dev/zero would never end).
FILE* open_for_reading(const std::string& path) {
  const std::string problem = regular_file_problem(path);
  if (!problem.empty()) throw image_error(path, problem);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw image_error(path, std::string("cannot open: ") + std::strerror(errno));
  return f;
}

void check_limit(int64_t max_side) {
  if (max_side < 1 || max_side > kMaxImageSide) {
    throw std::invalid_argument("frame-size limit " + std::to_string(max_side) + " is outside 1.." +
                                std::to_string(kMaxImageSide) + " pixels per side");
  }
}

// What load_image checks before decoding: the header's size within the limit, then a PNG's CRCs. Returns the
// header's {height, width} and leaves the file at its start.
std::pair<int64_t, int64_t> checked_header(const std::string& path, FILE* f, int64_t max_side) {
  // First of all, before stb_image reads the header (its JPEG header reader builds the Huffman tables too).
  if (is_jpeg(f)) {
    const std::string problem = jpeg_huffman_problem(f);
    if (!problem.empty()) throw image_error(path, "JPEG " + problem);
  }
  std::rewind(f);
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_file(f, &w, &h, &channels)) {
    throw image_error(path, std::string("not a readable PNG, JPEG or BMP (") + stbi_failure_reason() + ")");
  }
  if (h <= 0 || w <= 0) {
    throw image_error(path, "size " + std::to_string(h) + " x " + std::to_string(w) + " (height x width) is empty");
  }
  if (h > max_side || w > max_side) {
    throw image_error(path, "size " + std::to_string(h) + " x " + std::to_string(w) +
                                " (height x width) is over the frame-size limit of " + std::to_string(max_side) +
                                " pixels per side (--max-frame-side, at most " + std::to_string(kMaxImageSide) + ")");
  }
  if (is_png(f)) {
    const std::string problem = png_crc_problem(f);
    if (!problem.empty()) throw image_error(path, "PNG " + problem);
  }
  std::rewind(f);
  return {h, w};
}

}  // namespace

std::pair<int64_t, int64_t> image_size(const std::string& path, int64_t max_side) {
  check_limit(max_side);
  OpenFile file{open_for_reading(path)};
  return checked_header(path, file.f, max_side);
}

Image load_image(const std::string& path, int64_t max_side) {
  check_limit(max_side);
  OpenFile file{open_for_reading(path)};
  // The size from the header, before decoding: an absurd size is refused without a huge allocation.
  checked_header(path, file.f, max_side);
  int w = 0, h = 0, channels = 0;
  // Ask for 3 channels: stb converts grey -> RGB (replicated) and drops alpha, the documented conversions.
  unsigned char* pixels = stbi_load_from_file(file.f, &w, &h, &channels, 3);
  if (pixels == nullptr) {
    throw image_error(path, std::string("cannot decode (") + stbi_failure_reason() + "); is the file truncated?");
  }
  Image image;
  image.height = h;
  image.width = w;
  image.rgb.assign(pixels, pixels + static_cast<size_t>(w) * h * 3);
  stbi_image_free(pixels);
  return image;
}

void save_png(const std::string& path, const Image& image) {
  if (image.height <= 0 || image.width <= 0 || image.rgb.size() != static_cast<size_t>(image.height * image.width * 3)) {
    throw image_error(path, "cannot write an image of size " + std::to_string(image.height) + " x " +
                                std::to_string(image.width) + " holding " + std::to_string(image.rgb.size()) + " bytes");
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int ok = stbi_write_png(tmp.c_str(), static_cast<int>(image.width), static_cast<int>(image.height), 3,
                                image.rgb.data(), static_cast<int>(image.width * 3));
  std::error_code ec;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    throw image_error(path, "cannot write the PNG (is the folder there and writable?)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw image_error(path, "cannot move the finished PNG into place");
  }
}

}  // namespace glance::rlt
