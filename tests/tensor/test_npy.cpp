// .npy save/load (tensor/npy.h): round trips for every dtype, byte-exact files written by hand from the
// format spec (so the reader and writer are checked against the format, not against each other), and
// every kind of corrupt file rejected with a message that names the file and the problem.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/npy.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
namespace fs = std::filesystem;

// A fresh, empty directory per test.
fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) / (std::string("glance_npy_") + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// A version 1.0 file by the spec: magic, version, uint16 length, the dict padded with spaces and '\n' so
// the data starts at a multiple of 64, then the data.
std::string npy_v1(const std::string& dict, const std::string& data) {
  size_t unpadded = 10 + dict.size() + 1;
  size_t header_len = (unpadded + 63) / 64 * 64 - 10;
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header_len & 0xff);
  out += static_cast<char>(header_len >> 8);
  out += dict + std::string(header_len - dict.size() - 1, ' ') + "\n";
  return out + data;
}

template <typename T>
std::string le_bytes(const std::vector<T>& values) {  // the host is little-endian (npy.cpp asserts it)
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

template <typename T>
void expect_round_trip(const fs::path& dir, const std::vector<T>& values, const Shape& shape) {
  SCOPED_TRACE(std::string(dtype_name(dtype_of<T>::value)) + " " + shape_str(shape));
  Tensor t = ops::from_vector(values, shape);
  fs::path p = dir / "t.npy";
  save_npy(p.string(), t);
  Tensor back = load_npy(p.string());
  EXPECT_EQ(back.dtype(), t.dtype());
  EXPECT_EQ(back.shape(), shape);
  EXPECT_EQ(back.template to_vector<T>(), values);
  // The data starts on a 64-byte boundary: 10 bytes of preamble + the header length at bytes 8..9.
  std::string bytes = read_bytes(p);
  size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes.size(), 10 + header_len + values.size() * sizeof(T));
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
}

// Runs `f`, which must throw std::runtime_error whose message contains every one of `parts`.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message: " << e.what() << "\nmissing: " << part;
    }
  }
}

// Writes `bytes` to a file and expects load_npy to reject it with "load_npy: <path>: <problem...>".
void expect_rejected(const fs::path& dir, const std::string& bytes, std::initializer_list<std::string> problem) {
  fs::path p = dir / "bad.npy";
  write_bytes(p, bytes);
  std::vector<std::string> parts = {"load_npy: " + p.string() + ": "};
  parts.insert(parts.end(), problem.begin(), problem.end());
  try {
    load_npy(p.string());
    ADD_FAILURE() << "expected std::runtime_error for " << *problem.begin();
  } catch (const std::runtime_error& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message: " << e.what() << "\nmissing: " << part;
    }
  }
}

const std::string kF4Dict22 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";

TEST(Npy, RoundTripEveryDtype) {
  fs::path dir = test_dir();
  expect_round_trip<float>(dir, {1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f}, {2, 3});
  expect_round_trip<double>(dir, {3.141592653589793, -1e-300, 2.0, 7.0}, {4});
  expect_round_trip<int32_t>(dir, {INT32_MIN, -1, 0, INT32_MAX}, {2, 1, 2});
  expect_round_trip<int64_t>(dir, {INT64_MIN, 42, INT64_MAX}, {3});
  expect_round_trip<uint8_t>(dir, {0, 127, 255, 9}, {2, 2});
  expect_round_trip<bool>(dir, {true, false, false, true, true}, {5});
  expect_round_trip<float>(dir, {2.5f}, {});  // a 0-dim scalar: shape ()
  expect_round_trip<double>(dir, {}, {0, 3});  // empty
}

TEST(Npy, NonContiguousViewIsSavedRowMajor) {
  fs::path dir = test_dir();
  Tensor m = ops::from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor view = ops::transpose(m, 0, 1);  // [4, 3], strides [1, 4]
  ASSERT_FALSE(view.is_contiguous());
  save_npy((dir / "v.npy").string(), view);
  Tensor back = load_npy((dir / "v.npy").string());
  EXPECT_EQ(back.shape(), (Shape{4, 3}));
  EXPECT_EQ(back.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));

  Tensor strided = ops::slice(ops::from_vector<float>({0, 1, 2, 3, 4, 5, 6}), 0, 1, 7, 2);  // [1, 3, 5]
  save_npy((dir / "s.npy").string(), strided);
  EXPECT_EQ(load_npy((dir / "s.npy").string()).to_vector<float>(), (std::vector<float>{1, 3, 5}));
}

// The exact bytes of a 2x2 float32 [[1, 2], [3, 4]], written out by hand.
TEST(Npy, SavedBytesMatchTheSpec) {
  fs::path dir = test_dir();
  save_npy((dir / "m.npy").string(), ops::from_vector<float>({1, 2, 3, 4}, {2, 2}));

  std::string expected("\x93NUMPY", 6);
  expected += std::string("\x01\x00", 2);  // version 1.0
  expected += std::string("\x76\x00", 2);  // header length 118 = 128 - 10: the data starts at byte 128
  expected += kF4Dict22;                   // 59 characters
  expected += std::string(58, ' ');        // 10 + 59 + 58 + 1 = 128
  expected += "\n";
  expected += std::string("\x00\x00\x80\x3f", 4);  // 1.0f = 0x3f800000, little-endian
  expected += std::string("\x00\x00\x00\x40", 4);  // 2.0f = 0x40000000
  expected += std::string("\x00\x00\x40\x40", 4);  // 3.0f = 0x40400000
  expected += std::string("\x00\x00\x80\x40", 4);  // 4.0f = 0x40800000
  EXPECT_EQ(read_bytes(dir / "m.npy"), expected);

  // And the reader takes the hand-written bytes back.
  write_bytes(dir / "hand.npy", expected);
  Tensor t = load_npy((dir / "hand.npy").string());
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Npy, HeaderShapesFor1DAndScalar) {
  fs::path dir = test_dir();
  save_npy((dir / "v.npy").string(), ops::from_vector<int32_t>({1, 2, 3, 4, 5}));
  EXPECT_NE(read_bytes(dir / "v.npy").find("'shape': (5,), }"), std::string::npos);
  save_npy((dir / "s.npy").string(), ops::scalar(1.0, DType::Float64));
  EXPECT_NE(read_bytes(dir / "s.npy").find("{'descr': '<f8', 'fortran_order': False, 'shape': (), }"), std::string::npos);
  save_npy((dir / "b.npy").string(), ops::from_vector<bool>({true}));
  EXPECT_NE(read_bytes(dir / "b.npy").find("'descr': '|b1'"), std::string::npos);
  save_npy((dir / "u.npy").string(), ops::from_vector<uint8_t>({7}));
  EXPECT_NE(read_bytes(dir / "u.npy").find("'descr': '|u1'"), std::string::npos);
}

TEST(Npy, LoadsFortranOrder) {
  fs::path dir = test_dir();
  // [[1, 2, 3], [4, 5, 6]] stored column by column.
  write_bytes(dir / "f.npy", npy_v1("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
                                   le_bytes<int32_t>({1, 4, 2, 5, 3, 6})));
  Tensor t = load_npy((dir / "f.npy").string());
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));

  // 3-D: element (i, j, k) = 100i + 10j + k sits at i + 2j + 6k in column-major order.
  std::vector<double> column_major(24);
  std::vector<double> row_major;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        column_major[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
        row_major.push_back(100 * i + 10 * j + k);
      }
  write_bytes(dir / "f3.npy", npy_v1("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }",
                                    le_bytes(column_major)));
  Tensor t3 = load_npy((dir / "f3.npy").string());
  EXPECT_EQ(t3.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t3.to_vector<double>(), row_major);
}

// Headers as other writers produce them: another key order, no trailing comma, double quotes,
// version 2.0 with its 4-byte length, trailing bytes after the data.
TEST(Npy, AcceptsOtherValidHeaders) {
  fs::path dir = test_dir();
  std::string data = le_bytes<float>({1, 2, 3, 4});
  write_bytes(dir / "a.npy", npy_v1("{\"shape\": (2,2), \"descr\": \"<f4\", \"fortran_order\": False}", data));
  EXPECT_EQ(load_npy((dir / "a.npy").string()).shape(), (Shape{2, 2}));

  // Version 2.0: a 4-byte header length (the reader does not insist on 64-byte alignment).
  std::string dict = kF4Dict22 + std::string(3, ' ') + "\n";
  std::string v2("\x93NUMPY\x02\x00", 8);
  v2 += static_cast<char>(dict.size());
  v2 += std::string(3, '\0');
  write_bytes(dir / "v2.npy", v2 + dict + data + "trailing");
  Tensor t = load_npy((dir / "v2.npy").string());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Npy, RejectsCorruptFiles) {
  fs::path dir = test_dir();
  const std::string f8x6 = le_bytes<double>({1, 2, 3, 4, 5, 6});  // 48 bytes
  auto dict = [](const std::string& descr, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  };

  expect_error([&] { load_npy((dir / "missing.npy").string()); },
               {"load_npy: " + (dir / "missing.npy").string() + ": cannot open"});
  expect_rejected(dir, "\x93NUM", {"too short"});
  expect_rejected(dir, "PK\x03\x04 this is a zip file, not an npy file", {"bad magic"});
  std::string v4 = npy_v1(dict("<f8", "(6,)"), f8x6);
  v4[6] = 4;
  expect_rejected(dir, v4, {"unsupported version 4.0"});
  std::string v11 = npy_v1(dict("<f8", "(6,)"), f8x6);
  v11[7] = 1;
  expect_rejected(dir, v11, {"unsupported version 1.1"});
  std::string long_header = npy_v1(dict("<f8", "(6,)"), "");
  long_header[8] = '\xff';
  long_header[9] = '\x7f';
  expect_rejected(dir, long_header, {"header length 32767 runs past the end of the file"});

  expect_rejected(dir, npy_v1("{'descr': '<f8', 'fortran_order': False}", f8x6), {"malformed header", "missing"});
  expect_rejected(dir, npy_v1("{'descr' '<f8', 'fortran_order': False, 'shape': (6,)}", f8x6),
                  {"malformed header", "expected ':'"});
  expect_rejected(dir, npy_v1("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (6,)}", f8x6),
                  {"malformed header", "True or False"});
  expect_rejected(dir, npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'extra': 1}", f8x6),
                  {"malformed header", "'extra'"});
  expect_rejected(dir, npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (six,)}", f8x6),
                  {"malformed header", "expected an integer"});
  expect_rejected(dir, npy_v1("['descr', '<f8']", f8x6), {"malformed header", "expected '{'"});

  expect_rejected(dir, npy_v1(dict(">f4", "(2, 2)"), std::string(16, '\0')), {"unsupported descr '>f4'", "big-endian"});
  expect_rejected(dir, npy_v1(dict("<c8", "(2,)"), std::string(16, '\0')), {"unsupported descr '<c8'"});
  expect_rejected(dir, npy_v1(dict("<f2", "(2,)"), std::string(4, '\0')), {"unsupported descr '<f2'"});
  expect_rejected(dir, npy_v1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f8x6),
                  {"unsupported descr [('a', '<f4')]", "structured"});

  expect_rejected(dir, npy_v1(dict("<f8", "(-1, 6)"), f8x6), {"negative size -1"});
  expect_rejected(dir, npy_v1(dict("<f8", "(4294967296, 4294967296)"), f8x6), {"too many elements"});
  expect_rejected(dir, npy_v1(dict("<f8", "(99999999999999999999,)"), f8x6), {"malformed header", "int64"});
  expect_rejected(dir, npy_v1(dict("<f8", "(2, 3)"), f8x6.substr(0, 40)),
                  {"truncated data (expected 48 bytes, found 40)"});
}

TEST(Npy, OverwritesAnExistingFile) {
  fs::path dir = test_dir();
  fs::path p = dir / "x.npy";
  save_npy(p.string(), ops::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}));
  save_npy(p.string(), ops::from_vector<int64_t>({9}));
  EXPECT_EQ(load_npy(p.string()).to_vector<int64_t>(), std::vector<int64_t>{9});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temp file left
}

TEST(Npy, FailedSaveThrowsAndLeavesNoFile) {
  fs::path dir = test_dir();
  Tensor t = ops::from_vector<float>({1, 2});

  // The directory does not exist: the temporary cannot even be created.
  fs::path missing = dir / "no_such_dir" / "x.npy";
  expect_error([&] { save_npy(missing.string(), t); }, {"save_npy: " + missing.string() + ": "});
  EXPECT_FALSE(fs::exists(missing));

  // The target is a directory: the temporary is written, the rename fails, the temporary is removed.
  fs::path target = dir / "a_directory";
  fs::create_directories(target);
  expect_error([&] { save_npy(target.string(), t); }, {"save_npy: " + target.string() + ": ", "rename"});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // only a_directory
  EXPECT_TRUE(fs::is_directory(target));
}

}  // namespace
