// Reading and writing frames: a bit-exact PNG round trip, hand-built PNG and BMP files (grey replicated
// to RGB, alpha dropped, BMP's bottom-up BGR rows), and every kind of bad file rejected with a message
// that names it: missing, truncated, not an image, absurd dimensions (refused from the header alone).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "rlt/image.h"
#include "error_text.h"

namespace {

using namespace glance::rlt;
namespace fs = std::filesystem;

using test_support::Contains;
using test_support::error_of;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string u32_be(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string u32_le(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}
std::string u16_le(uint16_t v) { return {static_cast<char>(v), static_cast<char>(v >> 8)}; }

// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), bit by bit: what every PNG chunk ends with.
uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return u32_be(static_cast<uint32_t>(data.size())) + type + data + u32_be(crc32(type + data));
}

// A PNG written by hand: 8 bits per channel, `color_type` 0 (grey), 2 (RGB), 4 (grey + alpha) or
// 6 (RGBA); `pixels` row-major with `channels` bytes per pixel. The zlib stream uses "stored" (not
// compressed) deflate blocks, so no compressor is needed: header 78 01, then per block a flag byte,
// LEN and ~LEN (little-endian), the raw bytes; then the Adler-32 of the raw data.
std::string make_png(uint32_t width, uint32_t height, int color_type, int channels, const std::vector<uint8_t>& pixels) {
  std::string raw;  // each row: filter type 0 (none), then the row's bytes
  for (uint32_t y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width * channels,
               static_cast<size_t>(width) * channels);
  }
  std::string z = "\x78\x01";
  for (size_t pos = 0; pos < raw.size() || pos == 0; pos += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z += static_cast<char>(pos + n >= raw.size() ? 1 : 0);  // BFINAL on the last block, BTYPE 00
    z += u16_le(static_cast<uint16_t>(n)) + u16_le(static_cast<uint16_t>(~n));
    z += raw.substr(pos, n);
  }
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  z += u32_be((b << 16) | a);
  const std::string ihdr = u32_be(width) + u32_be(height) + std::string{8, static_cast<char>(color_type), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", z) + png_chunk("IEND", "");
}

// A 24-bit BMP written by hand: 14-byte file header, 40-byte BITMAPINFOHEADER, then rows bottom-up, each
// pixel B, G, R, each row padded to a multiple of 4 bytes. `rgb` is top-down [h, w, 3] like Image.
// `pixel_bytes = false` writes the header only (for a header that lies about its size).
std::string make_bmp(int32_t width, int32_t height, const std::vector<uint8_t>& rgb, bool pixel_bytes = true) {
  const uint32_t row = (static_cast<uint32_t>(width) * 3 + 3) / 4 * 4;
  const uint32_t data_size = row * static_cast<uint32_t>(height);
  std::string out = "BM" + u32_le(54 + data_size) + u32_le(0) + u32_le(54);
  out += u32_le(40) + u32_le(static_cast<uint32_t>(width)) + u32_le(static_cast<uint32_t>(height)) + u16_le(1) +
         u16_le(24) + u32_le(0) + u32_le(data_size) + u32_le(2835) + u32_le(2835) + u32_le(0) + u32_le(0);
  if (!pixel_bytes) return out;
  for (int32_t y = height - 1; y >= 0; --y) {
    std::string line;
    for (int32_t x = 0; x < width; ++x) {
      const uint8_t* p = rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
      line += {static_cast<char>(p[2]), static_cast<char>(p[1]), static_cast<char>(p[0])};
    }
    line.resize(row, '\0');
    out += line;
  }
  return out;
}

// A fresh folder per test, removed afterwards.
class ImageFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("glance_image_" + std::to_string(getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Pseudo-random but reproducible pixels (noise compresses badly, so the PNG is large enough to cut).
Image noise_image(int64_t h, int64_t w) {
  Image img(h, w);
  uint32_t s = 12345;
  for (uint8_t& v : img.rgb) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return img;
}

TEST_F(ImageFiles, PngRoundTripIsBitExact) {
  const Image img = noise_image(37, 53);
  save_png(path("a.png"), img);
  const Image back = load_image(path("a.png"));
  EXPECT_EQ(back.height, 37);
  EXPECT_EQ(back.width, 53);
  EXPECT_EQ(back.rgb, img.rgb);
  EXPECT_EQ(image_size(path("a.png")), std::make_pair(int64_t{37}, int64_t{53}));
  // The atomic write left no temporary file behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);
}

TEST_F(ImageFiles, HandBuiltRgbPngDecodes) {
  const std::vector<uint8_t> px = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};  // 2 x 2
  write_bytes(path("rgb.png"), make_png(2, 2, 2, 3, px));
  const Image img = load_image(path("rgb.png"));
  ASSERT_EQ(img.height, 2);
  ASSERT_EQ(img.width, 2);
  EXPECT_EQ(img.rgb, px);
}

TEST_F(ImageFiles, GreyPngIsReplicatedToRgb) {
  write_bytes(path("grey.png"), make_png(3, 1, 0, 1, {0, 128, 255}));
  const Image img = load_image(path("grey.png"));
  ASSERT_EQ(img.height, 1);
  ASSERT_EQ(img.width, 3);
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255}));
}

TEST_F(ImageFiles, AlphaIsDropped) {
  // RGBA: the colour is kept as it is, whatever the alpha (no blending with a background).
  write_bytes(path("rgba.png"), make_png(2, 1, 6, 4, {10, 20, 30, 0, 40, 50, 60, 255}));
  Image img = load_image(path("rgba.png"));
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
  // Grey + alpha: the grey is replicated, the alpha dropped.
  write_bytes(path("ga.png"), make_png(2, 1, 4, 2, {7, 0, 200, 128}));
  img = load_image(path("ga.png"));
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{7, 7, 7, 200, 200, 200}));
}

TEST_F(ImageFiles, HandBuiltBmpDecodesTopDownRgb) {
  // 3 x 2 (odd width: each 9-byte row is padded to 12), stored bottom-up and BGR in the file.
  const std::vector<uint8_t> rgb = {1, 2, 3, 4, 5, 6, 7, 8, 9,  //
                                    10, 11, 12, 13, 14, 15, 16, 17, 18};
  write_bytes(path("f.bmp"), make_bmp(3, 2, rgb));
  const Image img = load_image(path("f.bmp"));
  ASSERT_EQ(img.height, 2);
  ASSERT_EQ(img.width, 3);
  EXPECT_EQ(img.rgb, rgb);
}

TEST_F(ImageFiles, MissingFileIsNamed) {
  const std::string p = path("nope.png");
  EXPECT_TRUE(Contains(error_of([&] { load_image(p); }), p));
  EXPECT_TRUE(Contains(error_of([&] { image_size(p); }), p));
  // A folder is not a file either.
  EXPECT_TRUE(Contains(error_of([&] { load_image(dir_.string()); }), dir_.string()));
}

TEST_F(ImageFiles, TruncatedPngIsNamed) {
  save_png(path("whole.png"), noise_image(64, 64));
  const std::string bytes = read_bytes(path("whole.png"));
  ASSERT_GT(bytes.size(), 1000u);
  write_bytes(path("cut.png"), bytes.substr(0, bytes.size() / 2));
  const std::string msg = error_of([&] { load_image(path("cut.png")); });
  EXPECT_TRUE(Contains(msg, path("cut.png")));
}

TEST_F(ImageFiles, TextFileNamedPngIsNamed) {
  write_bytes(path("notes.png"), "this is not a picture\n");
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("notes.png")); }), path("notes.png")));
  EXPECT_TRUE(Contains(error_of([&] { image_size(path("notes.png")); }), path("notes.png")));
  write_bytes(path("empty.png"), "");
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("empty.png")); }), path("empty.png")));
}

TEST_F(ImageFiles, AbsurdDimensionsAreRefusedFromTheHeader) {
  // Headers claiming 100000 x 100000 pixels (30 GB of RGB) with no pixel data behind them: refused before
  // any allocation, with the file named.
  write_bytes(path("huge.bmp"), make_bmp(100000, 100000, {}, /*pixel_bytes=*/false));
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("huge.bmp")); }), path("huge.bmp")));
  EXPECT_TRUE(Contains(error_of([&] { image_size(path("huge.bmp")); }), path("huge.bmp")));
  std::string png = make_png(1, 1, 2, 3, {0, 0, 0});
  const std::string ihdr = u32_be(100000) + u32_be(100000) + std::string{8, 2, 0, 0, 0};
  png = png.substr(0, 8) + png_chunk("IHDR", ihdr) + png.substr(8 + 25);  // swap in the lying IHDR
  write_bytes(path("huge.png"), png);
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("huge.png")); }), path("huge.png")));
  // Within what stb accepts but beyond glance's own limit: the message gives the size and the limit.
  write_bytes(path("wide.bmp"), make_bmp(20000, 1, {}, /*pixel_bytes=*/false));
  const std::string msg = error_of([&] { load_image(path("wide.bmp")); });
  EXPECT_TRUE(Contains(msg, path("wide.bmp")));
  EXPECT_TRUE(Contains(msg, "1 x 20000"));
  EXPECT_TRUE(Contains(msg, std::to_string(kDefaultMaxFrameSide)));
}

TEST_F(ImageFiles, TheFrameSizeLimitIsCheckedFromTheHeaderBeforeDecoding) {
  // 4097 x 3 pixels claimed by a header with no pixel data behind it: one over the default limit. The message is
  // the limit's, not a decoding error, so the size was refused before any decoding (or allocation).
  write_bytes(path("tall.bmp"), make_bmp(3, 4097, {}, /*pixel_bytes=*/false));
  for (const std::string& msg : {error_of([&] { load_image(path("tall.bmp")); }),
                                 error_of([&] { image_size(path("tall.bmp")); })}) {
    EXPECT_TRUE(Contains(msg, path("tall.bmp")));
    EXPECT_TRUE(Contains(msg, "4097 x 3 (height x width) is over the frame-size limit of 4096 pixels per side"));
    EXPECT_TRUE(Contains(msg, "--max-frame-side"));
  }
  // A lower limit refuses a real frame of 37 x 53; the limit at its longer side accepts it, bit-exact.
  const Image img = noise_image(37, 53);
  save_png(path("a.png"), img);
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("a.png"), 52); }), "37 x 53 (height x width) is over the "
                                                                         "frame-size limit of 52 pixels per side"));
  EXPECT_TRUE(Contains(error_of([&] { image_size(path("a.png"), 36); }), "limit of 36 pixels"));
  EXPECT_EQ(load_image(path("a.png"), 53).rgb, img.rgb);
  EXPECT_EQ(image_size(path("a.png"), 53), std::make_pair(int64_t{37}, int64_t{53}));
  // A limit outside 1..kMaxImageSide is a caller's mistake.
  EXPECT_THROW(load_image(path("a.png"), 0), std::invalid_argument);
  EXPECT_THROW(image_size(path("a.png"), kMaxImageSide + 1), std::invalid_argument);
}

TEST_F(ImageFiles, AJpegHuffmanTableOfOver256CodesIsRefusedBeforeStbReadsIt) {
  // SOI, then a DHT segment whose one table declares 45 + 255 = 300 codes: Debian's stb_image (2.27) would write
  // the 300 code sizes into an array of 257 while reading the header. Then symbols, and EOI.
  std::string counts(16, '\0');
  counts[14] = static_cast<char>(45), counts[15] = static_cast<char>(255);
  const std::string table = std::string(1, '\0') + counts + std::string(300, '\x01');
  const size_t length = 2 + table.size();
  const std::string jpeg = std::string("\xFF\xD8\xFF\xC4", 4) + static_cast<char>(length >> 8) +
                           static_cast<char>(length & 0xFF) + table + std::string("\xFF\xD9", 2);
  write_bytes(path("dht.jpg"), jpeg);
  for (const std::string& msg : {error_of([&] { load_image(path("dht.jpg")); }),
                                 error_of([&] { image_size(path("dht.jpg")); })}) {
    EXPECT_TRUE(Contains(msg, path("dht.jpg")));
    EXPECT_TRUE(Contains(msg, "JPEG DHT segment at byte 2: table 0 declares 300 codes (at most 256)"));
  }
  // The same table behind a segment length of 6: stb_image reads a table's 17 header bytes whatever the length,
  // so the check reads them too.
  const std::string short_length = std::string("\xFF\xD8\xFF\xC4\x00\x06", 6) + table + std::string("\xFF\xD9", 2);
  write_bytes(path("dht_short.jpg"), short_length);
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("dht_short.jpg")); }), "table 0 declares 300 codes"));
  // Cut inside the counts, after counts of 45 and 255: stb_image reads zeros past the end, and still 300 codes.
  write_bytes(path("dht_cut.jpg"), std::string("\xFF\xD8\xFF\xC4\x01\x40\x00\x00\x2D\xFF", 10));
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("dht_cut.jpg")); }), "table 0 declares 300 codes"));
  // stb_image takes FF FF D8 for the start of a JPEG too (a fill byte before D8).
  write_bytes(path("dht_fill.jpg"), "\xFF" + jpeg);
  EXPECT_TRUE(Contains(error_of([&] { load_image(path("dht_fill.jpg")); }), "table 0 declares 300 codes"));
}

TEST_F(ImageFiles, SavePngRefusesBadImagesAndMissingFolders) {
  Image bad;
  bad.height = 2;
  bad.width = 2;  // but no pixels
  EXPECT_TRUE(Contains(error_of([&] { save_png(path("bad.png"), bad); }), path("bad.png")));
  const std::string p = (dir_ / "no_such_folder" / "x.png").string();
  EXPECT_TRUE(Contains(error_of([&] { save_png(p, noise_image(2, 2)); }), p));
}

}  // namespace
