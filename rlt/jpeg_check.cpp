#include "rlt/jpeg_check.h"

#include <vector>

namespace glance::rlt {

namespace {

// The DHT segment whose length bytes start at the file's position, read as stb_image reads it: table after table
// while the segment's length says more follow, a table's 17 header bytes read even past the segment's end, and
// zeros past the file's end. Returns the first table declaring over 256 codes as a problem, else "".
std::string dht_problem(std::FILE* file, long marker_at) {
  const int hi = std::fgetc(file), lo = std::fgetc(file);
  if (hi == EOF || lo == EOF) return "";
  long remaining = ((hi << 8) | lo) - 2;
  for (int table = 0; remaining > 0; ++table) {
    unsigned char head[17] = {};
    const size_t got = std::fread(head, 1, 17, file);
    int codes = 0;
    for (int i = 1; i <= 16; ++i) codes += head[i];
    if (codes > 256) {
      return "DHT segment at byte " + std::to_string(marker_at) + ": table " + std::to_string(table) + " declares " +
             std::to_string(codes) + " codes (at most 256)";
    }
    if (got < 17) return "";
    std::vector<unsigned char> symbols(static_cast<size_t>(codes));
    if (std::fread(symbols.data(), 1, symbols.size(), file) != symbols.size()) return "";
    remaining -= 17 + codes;
  }
  return "";
}

}  // namespace

bool is_jpeg(std::FILE* file) {
  // stb_image takes FF, any number of fill bytes FF, then D8 as the SOI marker.
  std::rewind(file);
  if (std::fgetc(file) != 0xFF) return false;
  int c;
  do c = std::fgetc(file); while (c == 0xFF);
  return c == 0xD8;
}

std::string jpeg_huffman_problem(std::FILE* file) {
  if (!is_jpeg(file)) return "not a JPEG (no SOI marker)";
  // stb_image reads a DHT segment only after the bytes FF C4, but where it finds them depends on every detail of
  // its parser (junk between segments, fill bytes, the end of a scan's data). So every FF C4 in the file is read
  // as a DHT segment: a superset of those stb_image can reach, so none it reads goes unchecked.
  std::rewind(file);
  long offset = 0;  // of the next byte
  int previous = 0;
  for (int c; (c = std::fgetc(file)) != EOF; previous = c, ++offset) {
    if (previous != 0xFF || c != 0xC4) continue;
    const long after = offset + 1;
    const std::string problem = dht_problem(file, offset - 1);
    if (!problem.empty()) return problem;
    if (std::fseek(file, after, SEEK_SET) != 0) return "";
  }
  return "";
}

}  // namespace glance::rlt
