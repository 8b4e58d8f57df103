// A JPEG's Huffman tables, checked before stb_image sees the file. The stb_image of Debian 12 (v2.27) builds a
// table from the 16 code counts of a DHT segment without checking that they add up to at most 256, the size of
// its arrays: a damaged or hostile JPEG writes past them (found by fuzz/fuzz_frames.cpp; stb_image 2.28 refuses
// such a table itself). glance refuses it first.
//
// stb_image reads a DHT segment (its tables: 1 byte class/id, 16 code counts, then that many symbol bytes) after
// the bytes FF C4; exactly where it meets them depends on every detail of its parser, so glance reads every FF C4
// in the file as a DHT segment, the way stb_image would, and refuses the file if any table declares over 256.
#pragma once
#include <cstdio>
#include <string>

namespace glance::rlt {

// True when `file` starts with a JPEG's SOI marker, FF D8, as stb_image finds it: fill bytes FF may come between
// (reads from its start; leaves the position anywhere).
bool is_jpeg(std::FILE* file);

// Reads the JPEG `file` from its start to its end and returns "" when no table stb_image could read declares
// over 256 codes, else the first that does: "DHT segment at byte 20: table 0 declares 300 codes (at most 256)".
// Other damage is left to the decoder, which reports it.
std::string jpeg_huffman_problem(std::FILE* file);

}  // namespace glance::rlt
