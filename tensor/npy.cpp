// NumPy .npy files (format spec: numpy.lib.format). The layout of a file:
//
//   offset 0   "\x93NUMPY"                    6 bytes of magic
//   offset 6   major, minor                   1 byte each: 1.0, 2.0 or 3.0
//   offset 8   header length H                uint16 little-endian (v1.0) or uint32 (v2.0, v3.0)
//   offset 10  header (12 in v2/v3)           H bytes of a Python dict literal, padded with spaces, ending '\n':
//                                             {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   then       the data                       numel * itemsize raw bytes, row-major unless fortran_order
//
// The writer pads the header so the data starts at a multiple of 64 bytes (numpy does the same, so the data
// can be memory-mapped aligned). The reader trusts nothing: every field is checked and every error names the
// file and the problem.
#include "tensor/npy.h"

#include <unistd.h>  // getpid

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

#include "tensor/ops.h"
#include "tensor/regular_file.h"

namespace glance {

// The data bytes are copied as they are in memory, which is right only on a little-endian host (x86, ARM).
static_assert(std::endian::native == std::endian::little, "npy.cpp assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes + the terminating 0, which is not written
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;

// NumPy's type strings: byte order ('<' little, '|' not applicable), kind, item size.
const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "<f4";
    case DType::Float64: return "<f8";
    case DType::Int32: return "<i4";
    case DType::Int64: return "<i8";
    case DType::UInt8: return "|u1";
    case DType::Bool: return "|b1";
  }
  return "?";
}

// "()" for a scalar, "(5,)" for 1-D (Python needs the comma to make a tuple), "(2, 3)" otherwise.
std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// ---------------------------------------------------------------------------------------------------
// Saving

// The full preamble: magic, version, header length, and the header padded to the 64-byte boundary.
std::string make_preamble(const Tensor& t) {
  std::string dict = std::string("{'descr': '") + descr_of(t.dtype()) +
                     "', 'fortran_order': False, 'shape': " + shape_tuple(t.shape()) + ", }";
  // Version 1.0 stores the header length in 2 bytes; a header past 65535 bytes (only from thousands of
  // dimensions) needs version 2.0's 4 bytes.
  bool v1 = kMagicSize + 2 + 2 + dict.size() + 1 <= 65535;
  size_t prefix = kMagicSize + 2 + (v1 ? 2 : 4);
  size_t total = prefix + dict.size() + 1;           // + the closing '\n'
  size_t padded = (total + kAlign - 1) / kAlign * kAlign;
  dict += std::string(padded - total, ' ') + '\n';

  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(v1 ? 1 : 2);
  out += static_cast<char>(0);
  uint32_t len = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < (v1 ? 2u : 4u); ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  return out + dict;
}

[[noreturn]] void save_error(const std::string& path, const std::string& problem) {
  throw std::runtime_error("save_npy: " + path + ": " + problem);
}

}  // namespace

void save_npy(const std::string& path, const Tensor& t) {
  if (!t.defined()) save_error(path, "the tensor is undefined");
  // Bring the data to the host in row-major order (both are no-ops for a contiguous CPU tensor).
  Tensor host = ops::contiguous(ops::to_device(t, Device::cpu()));
  std::string preamble = make_preamble(host);
  size_t nbytes = static_cast<size_t>(host.numel()) * host.itemsize();

  // Write beside the target, then rename: rename within one directory is atomic on POSIX, so a reader
  // sees either the old file or the complete new one, never half a file.
  std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) save_error(path, std::string("cannot create ") + tmp + " (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(preamble.data(), 1, preamble.size(), f) == preamble.size();
  if (ok && nbytes > 0) ok = std::fwrite(host.raw_data(), 1, nbytes, f) == nbytes;
  int saved_errno = errno;
  ok = (std::fclose(f) == 0) && ok;  // fclose flushes: a full disk can show up only here
  if (!ok) {
    std::remove(tmp.c_str());
    save_error(path, std::string("write failed (") + std::strerror(saved_errno ? saved_errno : errno) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    saved_errno = errno;
    std::remove(tmp.c_str());
    save_error(path, std::string("cannot rename ") + tmp + " into place (" + std::strerror(saved_errno) + ")");
  }
}

// ---------------------------------------------------------------------------------------------------
// Loading

namespace {

// A reader over the header text that throws "load_npy: <path>: malformed header: ..." on anything
// unexpected. It understands exactly the Python literals a .npy header uses: quoted strings,
// True/False, and tuples of integers.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool at_end() { skip_space(); return pos_ >= s_.size(); }
  char peek() { skip_space(); return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }
  std::string string_literal() {  // 'text' or "text", no escapes (none appear in a .npy header)
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return value;
  }
  bool bool_literal() {
    skip_space();
    if (s_.compare(pos_, 4, "True") == 0) { pos_ += 4; return true; }
    if (s_.compare(pos_, 5, "False") == 0) { pos_ += 5; return false; }
    fail("expected True or False");
  }
  int64_t int_literal() {
    skip_space();
    bool negative = accept('-');
    size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const auto digit = static_cast<uint64_t>(s_[pos_] - '0');
      if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - digit) / 10) {
        fail("a dimension does not fit in int64");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected an integer");
    if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 longs: (3L, 4L)
    return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
  }
  std::vector<int64_t> int_tuple() {  // (), (5,), (2, 3), (2, 3,)
    expect('(');
    std::vector<int64_t> values;
    while (!accept(')')) {
      values.push_back(int_literal());
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return values;
  }
  // The rest of a value we will not interpret (to name it in an error): up to the next ',' or '}' at depth 0.
  std::string raw_value() {
    skip_space();
    size_t start = pos_;
    int depth = 0;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) break;
        --depth;
      }
      if (c == ',' && depth == 0) break;
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("load_npy: " + path_ + ": malformed header: " + what + " at character " +
                             std::to_string(pos_) + " of \"" + trimmed() + "\"");
  }

 private:
  std::string trimmed() const {
    size_t end = s_.find_last_not_of(" \n");
    return s_.substr(0, end == std::string::npos ? 0 : end + 1);
  }
  const std::string& s_;
  const std::string& path_;
  size_t pos_ = 0;
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

[[noreturn]] void load_error(const std::string& path, const std::string& problem) {
  throw std::runtime_error("load_npy: " + path + ": " + problem);
}

// Parses {'descr': ..., 'fortran_order': ..., 'shape': ...}: keys in any order, each exactly once,
// nothing else (numpy rejects other keys too).
Header parse_header(const std::string& text, const std::string& path) {
  HeaderParser p(text, path);
  Header h;
  bool seen_descr = false, seen_order = false, seen_shape = false;
  p.expect('{');
  while (!p.accept('}')) {
    std::string key = p.string_literal();
    p.expect(':');
    if (key == "descr" && !seen_descr) {
      if (p.peek() != '\'' && p.peek() != '"') {
        load_error(path, "unsupported descr " + p.raw_value() + " (structured dtypes are not supported)");
      }
      h.descr = p.string_literal();
      seen_descr = true;
    } else if (key == "fortran_order" && !seen_order) {
      h.fortran_order = p.bool_literal();
      seen_order = true;
    } else if (key == "shape" && !seen_shape) {
      h.shape = p.int_tuple();
      seen_shape = true;
    } else {
      p.fail("unexpected or repeated key '" + key + "'");
    }
    if (!p.accept(',')) {
      p.expect('}');
      break;
    }
  }
  if (!p.at_end()) p.fail("text after the closing '}'");
  if (!seen_descr || !seen_order || !seen_shape) p.fail("missing one of 'descr', 'fortran_order', 'shape'");
  return h;
}

// The dtype for a descr. Multi-byte types must be little-endian ('<', or '=' native on this host);
// for one-byte types byte order means nothing, so '|', '<', '>' and '=' are all fine.
DType dtype_of_descr(const std::string& descr, const std::string& path) {
  std::string order = descr.substr(0, 1), kind = descr.size() > 1 ? descr.substr(1) : "";
  bool little = order == "<" || order == "=";
  bool any_order = little || order == "|" || order == ">";
  if (little && kind == "f4") return DType::Float32;
  if (little && kind == "f8") return DType::Float64;
  if (little && kind == "i4") return DType::Int32;
  if (little && kind == "i8") return DType::Int64;
  if (any_order && kind == "u1") return DType::UInt8;
  if (any_order && kind == "b1") return DType::Bool;
  if (order == ">" && (kind == "f4" || kind == "f8" || kind == "i4" || kind == "i8")) {
    load_error(path, "unsupported descr '" + descr + "' (big-endian data is not supported)");
  }
  load_error(path, "unsupported descr '" + descr +
                       "' (supported: '<f4', '<f8', '<i4', '<i8', '|u1', '|b1')");
}

uint64_t read_le(const unsigned char* bytes, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return v;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  // A FIFO would block the open below, /dev/zero would never end: only a regular file is read (a missing one
  // fails below with the system's reason).
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    if (const std::string problem = regular_file_problem(path); !problem.empty()) load_error(path, problem);
  }
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) load_error(path, std::string("cannot open (") + std::strerror(errno) + ")");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);

  // Magic and version.
  unsigned char pre[12] = {};
  if (file_size < 10 || !in.read(reinterpret_cast<char*>(pre), 10)) {
    load_error(path, "too short to be a .npy file (" + std::to_string(file_size) + " bytes)");
  }
  if (std::memcmp(pre, kMagic, kMagicSize) != 0) load_error(path, "bad magic (not a .npy file)");
  int major = pre[6], minor = pre[7];
  if (minor != 0 || major < 1 || major > 3) {
    load_error(path, "unsupported version " + std::to_string(major) + "." + std::to_string(minor) +
                         " (supported: 1.0, 2.0, 3.0)");
  }

  // Header length: 2 bytes in v1, 4 in v2/v3 (whose header is otherwise the same; v3 allows UTF-8).
  size_t len_bytes = major == 1 ? 2 : 4;
  if (len_bytes == 4 && (file_size < 12 || !in.read(reinterpret_cast<char*>(pre + 10), 2))) {
    load_error(path, "too short to hold a version " + std::to_string(major) + ".0 header length");
  }
  uint64_t header_len = read_le(pre + 8, len_bytes);
  uint64_t data_start = 8 + len_bytes + header_len;
  if (data_start > file_size) {
    load_error(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                         std::to_string(file_size) + " bytes)");
  }
  std::string text(header_len, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len))) load_error(path, "cannot read the header");
  Header h = parse_header(text, path);
  DType dtype = dtype_of_descr(h.descr, path);

  // Shape: no negative sizes, and numel * itemsize must not overflow before we compare it to the file.
  uint64_t numel = 1;
  for (int64_t s : h.shape) {
    if (s < 0) load_error(path, "negative size " + std::to_string(s) + " in shape " + shape_str(h.shape));
    if (s != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 8 / static_cast<uint64_t>(s)) {
      load_error(path, "shape " + shape_str(h.shape) + " has too many elements");
    }
    numel *= static_cast<uint64_t>(s);
  }
  uint64_t nbytes = numel * dtype_size(dtype);
  uint64_t found = file_size - data_start;
  if (found < nbytes) {
    load_error(path, "truncated data (expected " + std::to_string(nbytes) + " bytes, found " +
                         std::to_string(found) + ")");
  }
  // Bytes after the data are ignored, as numpy.load does.

  // Fortran order stores the array column-major: the same bytes are a C-order array of the reversed
  // shape. Read them that way, then view it with the axes reversed and copy into C order.
  Shape stored = h.shape;
  if (h.fortran_order) stored.assign(h.shape.rbegin(), h.shape.rend());
  Tensor t = Tensor::empty(stored, dtype);
  if (nbytes > 0 && !in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(nbytes))) {
    load_error(path, "cannot read the data");
  }
  if (dtype == DType::Bool) {  // a bool byte must be 0 or 1 in C++; accept any nonzero byte as true
    auto* b = static_cast<unsigned char*>(t.raw_data());
    for (uint64_t i = 0; i < numel; ++i) b[i] = b[i] != 0;
  }
  if (h.fortran_order && h.shape.size() > 1) {
    std::vector<int64_t> reversed_axes;
    for (int64_t a = static_cast<int64_t>(h.shape.size()) - 1; a >= 0; --a) reversed_axes.push_back(a);
    t = ops::contiguous(ops::permute(t, reversed_axes));
  }
  return t;
}

}  // namespace glance
