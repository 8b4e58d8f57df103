#include "rlt/jpeg_check.h"

#include <vector>

namespace glance::rlt {

bool is_jpeg(std::FILE* file) {
  std::rewind(file);
  return std::fgetc(file) == 0xFF && std::fgetc(file) == 0xD8;
}

std::string jpeg_huffman_problem(std::FILE* file) {
  if (!is_jpeg(file)) return "not a JPEG (no SOI marker)";
  long offset = 2;  // of the byte read next
  auto next = [&] {
    ++offset;
    return std::fgetc(file);
  };
  for (;;) {
    // Find the next marker: skip anything before 0xFF (entropy-coded data), fill bytes 0xFF, stuffed 0xFF 0x00.
    int c = next();
    if (c == EOF) return "";
    if (c != 0xFF) continue;
    do c = next(); while (c == 0xFF);
    if (c == EOF) return "";
    if (c == 0x00 || (c >= 0xD0 && c <= 0xD7) || c == 0x01 || c == 0xD8) continue;  // no segment follows
    if (c == 0xD9) return "";  // EOI
    const long marker_at = offset - 2;
    const int hi = next(), lo = next();
    if (hi == EOF || lo == EOF) return "";
    const int length = (hi << 8) | lo;
    if (length < 2) return "";  // the decoder refuses it
    std::vector<unsigned char> payload(static_cast<size_t>(length - 2));
    const size_t got = std::fread(payload.data(), 1, payload.size(), file);
    offset += static_cast<long>(got);
    if (c != 0xC4) continue;
    for (size_t pos = 0, table = 0; pos + 17 <= got; ++table) {
      int codes = 0;
      for (int i = 1; i <= 16; ++i) codes += payload[pos + i];
      if (codes > 256) {
        return "DHT segment at byte " + std::to_string(marker_at) + ": table " + std::to_string(table) + " declares " +
               std::to_string(codes) + " codes (at most 256)";
      }
      pos += 17 + static_cast<size_t>(codes);
    }
  }
}

}  // namespace glance::rlt
