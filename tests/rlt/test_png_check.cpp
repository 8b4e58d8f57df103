// A PNG's chunk CRCs, checked before decoding (rlt/png_check.h): CRC-32 against published check values, and
// files damaged one byte at a time, in a chunk's stored CRC or in its data, reported with the chunk named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "error_text.h"
#include "rlt/image.h"
#include "rlt/png_check.h"

namespace {

using namespace glance::rlt;
namespace fs = std::filesystem;
using test_support::Contains;
using test_support::error_of;

uint32_t crc_of(const std::string& bytes) { return crc32(0, bytes.data(), bytes.size()); }

TEST(Crc32, MatchesPublishedCheckValues) {
  EXPECT_EQ(crc_of(""), 0x00000000u);
  EXPECT_EQ(crc_of("123456789"), 0xCBF43926u);  // the check value of CRC-32/ISO-HDLC (zlib, PNG)
  EXPECT_EQ(crc_of("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
  EXPECT_EQ(crc_of("IEND"), 0xAE426082u);  // the last 4 bytes of every PNG: the CRC of the empty IEND chunk
  EXPECT_EQ(crc_of(std::string("\0", 1)), 0xD202EF8Du);
}

TEST(Crc32, FedInPiecesEqualsFedWhole) {
  const std::string text = "glance reads frames; a damaged one must not decode to wrong pixels";
  for (size_t cut = 0; cut <= text.size(); cut += 7) {
    const uint32_t first = crc32(0, text.data(), cut);
    EXPECT_EQ(crc32(first, text.data() + cut, text.size() - cut), crc_of(text)) << "cut at " << cut;
  }
}

class PngFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("glance_png_" + std::to_string(getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A real PNG (stb_image_write's) of 20 x 30 pixels of a gradient: chunks IHDR, IDAT, IEND.
    Image image(20, 30);
    for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<uint8_t>(i * 7);
    save_png(path("good.png"), image);
    std::ifstream in(path("good.png"), std::ios::binary);
    good_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  }
  std::string problem_of(const std::string& file) const {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    EXPECT_NE(f, nullptr) << file;
    const std::string problem = png_crc_problem(f);
    std::fclose(f);
    return problem;
  }
  fs::path dir_;
  std::string good_;
};

// Byte offsets in a PNG: signature 0..7; IHDR's length 8..11, type 12..15, data 16..28, CRC 29..32; then IDAT's
// length at 33, its type at 37 and its data from 41.
constexpr size_t kIhdrCrc = 29, kIdatData = 41;

TEST_F(PngFiles, AnIntactPngPasses) {
  ASSERT_EQ(good_.substr(12, 4), "IHDR");
  ASSERT_EQ(good_.substr(37, 4), "IDAT");
  EXPECT_EQ(problem_of(path("good.png")), "");
  EXPECT_EQ(load_image(path("good.png")).width, 30);
}

TEST_F(PngFiles, AFlippedCrcByteIsReportedNamingTheChunk) {
  std::string bad = good_;
  bad[kIhdrCrc + 3] ^= 0x01;  // the last byte of IHDR's stored CRC
  const std::string file = write("bad_crc.png", bad);
  EXPECT_TRUE(Contains(problem_of(file), "chunk 1 'IHDR' (at byte 8) has the CRC"));
  // load_image and image_size refuse it before decoding, naming the file and the chunk (stb_image alone
  // decodes it: it skips CRCs).
  const std::string msg = error_of([&] { load_image(file); });
  EXPECT_TRUE(Contains(msg, file));
  EXPECT_TRUE(Contains(msg, "'IHDR'"));
  EXPECT_TRUE(Contains(msg, "CRC"));
  EXPECT_TRUE(Contains(error_of([&] { image_size(file); }), "'IHDR'"));
}

TEST_F(PngFiles, AFlippedDataByteIsReportedNamingTheChunk) {
  std::string bad = good_;
  bad[kIdatData + 5] ^= 0x10;  // inside the compressed pixels: the CRC stored after them no longer matches
  const std::string file = write("bad_data.png", bad);
  EXPECT_TRUE(Contains(problem_of(file), "chunk 2 'IDAT' (at byte 33) has the CRC"));
  EXPECT_TRUE(Contains(error_of([&] { load_image(file); }), "'IDAT'"));
}

TEST_F(PngFiles, TruncationAndAMissingEndAreReported) {
  EXPECT_TRUE(Contains(problem_of(write("cut.png", good_.substr(0, kIdatData + 3))), "ends inside chunk 2 'IDAT'"));
  EXPECT_TRUE(Contains(problem_of(write("no_end.png", good_.substr(0, good_.size() - 12))), "no IEND chunk"));
  // A damaged chunk type is shown escaped, not printed raw.
  std::string bad = good_;
  bad[13] = '\x01';
  EXPECT_TRUE(Contains(problem_of(write("bad_type.png", bad)), "'I\\x01DR'"));
}

}  // namespace
