// A JPEG's Huffman tables, checked before stb_image sees the file. The stb_image of Debian 12 (v2.27) builds a
// table from the 16 code counts of a DHT segment without checking that they add up to at most 256, the size of
// its arrays: a damaged or hostile JPEG writes past them (found by fuzz/fuzz_frames.cpp; stb_image 2.28 refuses
// such a table itself). glance refuses it first.
//
// A JPEG is markers (0xFF, then a code): standalone ones (SOI D8, EOI D9, RSTn D0-D7) and segments with a 2-byte
// big-endian length that counts itself. A DHT segment (C4) holds tables of: 1 byte class/id, 16 code counts,
// then that many symbol bytes. After a scan header (SOS DA) comes entropy-coded data, in which 0xFF is followed by
// 0x00 (a stuffed byte) or a restart marker; the next other marker ends it.
#pragma once
#include <cstdio>
#include <string>

namespace glance::rlt {

// True when `file` starts with a JPEG's SOI marker (reads from its start; leaves the position anywhere).
bool is_jpeg(std::FILE* file);

// Reads the JPEG `file` from its start to EOI (or its end) and returns "" when every Huffman table declares at
// most 256 codes, else what is wrong: "DHT segment at byte 20: table 0 declares 300 codes (at most 256)".
// Other damage is left to the decoder, which reports it.
std::string jpeg_huffman_problem(std::FILE* file);

}  // namespace glance::rlt
