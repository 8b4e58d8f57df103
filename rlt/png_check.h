// The checksums of a PNG file, checked before it is decoded: stb_image skips them, so a PNG damaged on disk or
// in a copy would otherwise decode to wrong pixels without a word.
//
// A PNG is an 8-byte signature, then chunks until the one named IEND:
//
//   [4 bytes] length N (big-endian, at most 2^31 - 1)
//   [4 bytes] type, e.g. "IHDR", "IDAT", "IEND"
//   [N bytes] data
//   [4 bytes] CRC-32 of type + data (big-endian)
//
// CRC-32 is the one of zlib, gzip and Ethernet (reflected, polynomial 0xEDB88320, register and result
// inverted): crc32("123456789") = 0xCBF43926.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace glance::rlt {

// CRC-32 of `n` bytes continued from `crc` (the CRC of the bytes before them; 0 for none), so a long input can
// be fed in pieces: crc32(crc32(0, a, na), b, nb) == crc32 of a followed by b.
uint32_t crc32(uint32_t crc, const void* data, size_t n);

// True when `file` starts with the PNG signature (reads from its start; leaves the position anywhere).
bool is_png(std::FILE* file);

// Reads the PNG `file` from its start chunk by chunk (never more than 64 KiB in memory) up to IEND, and returns
// "" when every chunk's CRC matches, else what is wrong, naming the chunk: "chunk 3 'IDAT' (at byte 57) has the
// CRC 0x12345678 but its bytes give 0x9abcdef0", "the file ends inside chunk 2 'IDAT'", "no IEND chunk", ...
std::string png_crc_problem(std::FILE* file);

}  // namespace glance::rlt
