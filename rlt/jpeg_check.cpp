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
    if (c != 0xC4) {
      std::vector<unsigned char> payload(static_cast<size_t>(length - 2));
      offset += static_cast<long>(std::fread(payload.data(), 1, payload.size(), file));
      continue;
    }
    // DHT: read table after table as stb_image does, while the segment's length says more follow. Like stb, read
    // a table's 17 header bytes even where they run past the segment's end: the counts stb uses are those bytes.
    long remaining = length - 2;
    for (int table = 0; remaining > 0; ++table) {
      // At the file's end stb_image reads zeros: so do we (the counts before the end still count).
      unsigned char head[17] = {};
      const size_t got = std::fread(head, 1, 17, file);
      offset += static_cast<long>(got);
      int codes = 0;
      for (int i = 1; i <= 16; ++i) codes += head[i];
      if (codes > 256) {
        return "DHT segment at byte " + std::to_string(marker_at) + ": table " + std::to_string(table) + " declares " +
               std::to_string(codes) + " codes (at most 256)";
      }
      if (got < 17) return "";  // the decoder reports the truncation
      std::vector<unsigned char> symbols(static_cast<size_t>(codes));
      offset += static_cast<long>(std::fread(symbols.data(), 1, symbols.size(), file));
      remaining -= 17 + codes;
    }
    if (remaining < 0) return "";  // the tables overrun the segment: stb_image stops there with an error
  }
}

}  // namespace glance::rlt
