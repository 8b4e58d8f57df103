#include "rlt/png_check.h"

#include <array>
#include <cstring>
#include <vector>

namespace glance::rlt {

namespace {

// The CRC of every byte value, so the update takes one table look-up per byte instead of eight shifts.
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[b] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr uint32_t kMaxChunkLength = 0x7FFFFFFFu;  // the PNG specification's limit

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

std::string hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", v);
  return text;
}

// A chunk type as text; bytes that are not ASCII letters (a damaged type) as \xNN.
std::string type_text(const unsigned char* type) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    const unsigned char c = type[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
      out += static_cast<char>(c);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", c);
      out += esc;
    }
  }
  return out;
}

}  // namespace

uint32_t crc32(uint32_t crc, const void* data, size_t n) {
  const unsigned char* bytes = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ bytes[i]) & 0xFFu] ^ (c >> 8);
  return ~c;
}

bool is_png(std::FILE* file) {
  unsigned char head[8];
  std::rewind(file);
  return std::fread(head, 1, 8, file) == 8 && std::memcmp(head, kSignature, 8) == 0;
}

std::string png_crc_problem(std::FILE* file) {
  if (!is_png(file)) return "not a PNG (no PNG signature)";
  std::vector<unsigned char> buffer(64 * 1024);
  uint64_t offset = 8;  // of the chunk being read
  for (int64_t index = 1;; ++index) {
    unsigned char head[8];
    const size_t got = std::fread(head, 1, 8, file);
    if (got == 0) return "no IEND chunk: the file ends after chunk " + std::to_string(index - 1) + " (truncated?)";
    if (got < 8) return "the file ends inside the header of chunk " + std::to_string(index) + " (truncated?)";
    const uint32_t length = big_endian(head);
    const std::string name = "chunk " + std::to_string(index) + " '" + type_text(head + 4) + "' (at byte " +
                             std::to_string(offset) + ")";
    if (length > kMaxChunkLength) {
      return name + " declares " + std::to_string(length) + " bytes, over the PNG limit of 2^31 - 1";
    }
    uint32_t crc = crc32(0, head + 4, 4);  // the CRC covers the type and the data, not the length
    for (uint32_t left = length; left > 0;) {
      const size_t want = left < buffer.size() ? left : buffer.size();
      if (std::fread(buffer.data(), 1, want, file) != want) return "the file ends inside " + name + " (truncated?)";
      crc = crc32(crc, buffer.data(), want);
      left -= static_cast<uint32_t>(want);
    }
    unsigned char stored_bytes[4];
    if (std::fread(stored_bytes, 1, 4, file) != 4) return "the file ends inside " + name + " (truncated?)";
    const uint32_t stored = big_endian(stored_bytes);
    if (stored != crc) {
      return name + " has the CRC " + hex(stored) + " but its bytes give " + hex(crc) + ": the file is damaged";
    }
    if (std::memcmp(head + 4, "IEND", 4) == 0) return "";
    offset += 12 + uint64_t{length};
  }
}

}  // namespace glance::rlt
