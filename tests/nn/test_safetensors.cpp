// Safetensors: bit-exact round trips of every dtype, a hand-built file that glance must write byte for
// byte and read back, the 8-byte header padding, every kind of corrupt file rejected with its problem,
// atomic saves, and module checkpoints that refuse a mismatched model without touching it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/json.h"
#include "nn/module.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::nn;
namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glance_safetensors_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Every file in the directory (to prove no temporary file was left behind).
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The 8-byte little-endian length, written out byte by byte.
std::string u64_le(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

// A file from a header text (padded with spaces to a multiple of 8) and the buffer's bytes.
std::string make_file(std::string header, const std::string& buffer) {
  while (header.size() % 8 != 0) header += ' ';
  return u64_le(header.size()) + header + buffer;
}

// A CPU tensor holding exactly these bytes.
Tensor from_bytes(const Shape& shape, DType dtype, const void* bytes) {
  Tensor t = Tensor::empty(shape, dtype);
  if (t.numel() > 0) std::memcpy(t.raw_data(), bytes, t.numel() * t.itemsize());
  return t;
}

std::string bytes_of(const Tensor& t) {
  Tensor c = ops::contiguous(t);
  return std::string(static_cast<const char*>(c.raw_data()), c.numel() * c.itemsize());
}

// Expects `f` to throw std::runtime_error with every one of `parts` in its message.
template <typename F>
void expect_failure(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing: " << parts.front();
  } catch (const std::runtime_error& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// ---- round trips ----------------------------------------------------------------------------------

TEST_F(Safetensors, EveryDtypeRoundTripsBitExact) {
  // Awkward values on purpose: signed zero, NaN with a payload, infinities, subnormals, extremes.
  const uint32_t f32_bits[] = {0x00000000, 0x80000000, 0x7fc12345, 0x7f800000, 0xff800000, 0x00000001, 0x3f800000};
  const uint64_t f64_bits[] = {0x8000000000000000ull, 0x7ff8000000000abcull, 0x0000000000000001ull, 0x3fb999999999999aull};
  const int32_t i32[] = {std::numeric_limits<int32_t>::min(), -1, 0, 1, std::numeric_limits<int32_t>::max(), 7};
  const int64_t i64[] = {std::numeric_limits<int64_t>::min(), -1, std::numeric_limits<int64_t>::max()};
  uint8_t u8[256];
  for (int i = 0; i < 256; ++i) u8[i] = static_cast<uint8_t>(i);
  const uint8_t flags[] = {1, 0, 0, 1, 1};
  const int64_t scalar = 42;

  std::map<std::string, Tensor> tensors = {
      {"f32", from_bytes({7}, DType::Float32, f32_bits)},
      {"f64", from_bytes({2, 2}, DType::Float64, f64_bits)},
      {"i32", from_bytes({2, 3}, DType::Int32, i32)},
      {"i64", from_bytes({3}, DType::Int64, i64)},
      {"u8", from_bytes({16, 16}, DType::UInt8, u8)},
      {"mask", from_bytes({5}, DType::Bool, flags)},
      {"scalar", from_bytes({}, DType::Int64, &scalar)},         // shape []
      {"empty", Tensor::empty({0, 3}, DType::Float32)},          // no bytes in the buffer
      {"blocks.0.attn.qkv.weight", from_bytes({2, 3}, DType::Int32, i32)},
  };
  save_safetensors(path("all.safetensors"), tensors, {{"format", "pt"}});
  SafetensorsFile loaded = load_safetensors(path("all.safetensors"));

  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(loaded.tensors.count(name)) << name;
    const Tensor& back = loaded.tensors.at(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_TRUE(back.device().is_cpu());
    EXPECT_EQ(bytes_of(back), bytes_of(t)) << name;
  }
  EXPECT_EQ(loaded.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST_F(Safetensors, NonContiguousTensorsAreSavedInRowMajorOrder) {
  const float values[] = {0, 1, 2, 3, 4, 5};  // [[0, 1, 2], [3, 4, 5]]
  Tensor t = ops::transpose(from_bytes({2, 3}, DType::Float32, values), 0, 1);  // [[0, 3], [1, 4], [2, 5]]
  ASSERT_FALSE(t.is_contiguous());
  save_safetensors(path("t.safetensors"), {{"t", t}});
  Tensor back = load_safetensors(path("t.safetensors")).tensors.at("t");
  EXPECT_EQ(back.shape(), (Shape{3, 2}));
  EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

// ---- the exact bytes --------------------------------------------------------------------------

TEST_F(Safetensors, TinyFileIsWrittenByteForByteAndRead) {
  // Two tensors and one metadata entry, built by hand. Keys are sorted, so "__metadata__" ('_' is 0x5F)
  // comes before "a"; each entry's keys are sorted too.
  std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,11],"dtype":"U8","shape":[3,1]}})";
  ASSERT_EQ(header.size(), 140u);  // padded with 4 spaces to 144
  std::string expected = u64_le(144) + header + std::string(4, ' ') +
                         std::string("\x00\x00\x80\x3f", 4) +  // 1.0f, little-endian IEEE 754
                         std::string("\x00\x00\x00\xc0", 4) +  // -2.0f
                         std::string("\x01\x02\x03", 3);       // the uint8 values
  ASSERT_EQ(expected.size(), 8u + 144u + 11u);

  const float a[] = {1.0f, -2.0f};
  const uint8_t b[] = {1, 2, 3};
  save_safetensors(path("mine.safetensors"),
                   {{"a", from_bytes({2}, DType::Float32, a)}, {"b", from_bytes({3, 1}, DType::UInt8, b)}},
                   {{"format", "pt"}});
  EXPECT_EQ(read_bytes(path("mine.safetensors")), expected);

  write_bytes(path("hand.safetensors"), expected);
  SafetensorsFile f = load_safetensors(path("hand.safetensors"));
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors.at("a").to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f.tensors.at("b").shape(), (Shape{3, 1}));
  EXPECT_EQ(f.tensors.at("b").to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3}));
}

TEST_F(Safetensors, ReadsHeadersInAnyOrderAndSpacing) {
  // Another writer may order keys and tensors differently and add whitespace; the offsets decide.
  std::string header = R"({ "b" : {"shape": [1], "dtype": "I32", "data_offsets": [4, 8]},)"
                       R"( "a": {"data_offsets": [0, 4], "shape": [], "dtype": "I32"} })";
  write_bytes(path("x.safetensors"), make_file(header, std::string("\x07\x00\x00\x00\xff\xff\xff\xff", 8)));
  SafetensorsFile f = load_safetensors(path("x.safetensors"));
  EXPECT_EQ(f.tensors.at("a").to_vector<int32_t>(), (std::vector<int32_t>{7}));
  EXPECT_EQ(f.tensors.at("b").to_vector<int32_t>(), (std::vector<int32_t>{-1}));
  EXPECT_TRUE(f.metadata.empty());
}

TEST_F(Safetensors, HeaderIsPaddedToAMultipleOf8) {
  for (int length = 1; length <= 9; ++length) {
    std::string name(length, 'w');
    const float v = 0.5f;
    save_safetensors(path("p.safetensors"), {{name, from_bytes({1}, DType::Float32, &v)}});
    std::string bytes = read_bytes(path("p.safetensors"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    EXPECT_EQ(n % 8, 0u) << name;
    EXPECT_EQ(bytes.size(), 8 + n + 4) << name;
    std::string header = bytes.substr(8, n);
    size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
    EXPECT_LT(header.size() - close - 1, 8u);
    EXPECT_EQ(bytes.substr(8 + n), std::string("\x00\x00\x00\x3f", 4));  // 0.5f, right at the buffer start
  }
}

// ---- corrupt files ------------------------------------------------------------------------------

TEST_F(Safetensors, CorruptFilesAreRejectedNamingTheProblem) {
  std::string p = path("bad.safetensors");
  auto expect_rejected = [&](const std::string& bytes, const std::string& problem) {
    write_bytes(p, bytes);
    expect_failure([&] { load_safetensors(p); }, {"safetensors: " + p + ": ", problem});
  };
  const std::string f32_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\x01');
  const std::string good = make_file("{" + f32_entry + "}", eight);
  ASSERT_NO_THROW({ write_bytes(p, good); load_safetensors(p); });

  // Too short, truncated, and wrong header lengths.
  expect_rejected("", "the file is 0 bytes, shorter than the 8-byte header length");
  expect_rejected(std::string("\x08\x00\x00", 3), "the file is 3 bytes, shorter than the 8-byte header length");
  expect_rejected(good.substr(0, 20), "is larger than the 12 bytes after it");        // cut in the header
  expect_rejected(good.substr(0, good.size() - 3), "run past the end of the 5-byte buffer");  // cut in the data
  expect_rejected(u64_le(0) + "{}", "the header length is 0");
  expect_rejected(u64_le(1ull << 40) + "{}", "the header length 1099511627776 is over the 100 MB limit");
  expect_rejected(u64_le(64) + "{}      ", "the header length 64 is larger than the 8 bytes after it");
  expect_rejected(u64_le(~0ull) + "{}      ", "is over the 100 MB limit");

  // The header is not JSON, or not an object.
  expect_rejected(make_file(R"({"w": {"dtype": "F32",)", ""), "the header is not valid JSON (json: ");
  expect_rejected(make_file(R"({"w": 1} trailing)", ""), "unexpected trailing characters");
  expect_rejected(make_file(R"({"a":{},"a":{}})", ""), "duplicate key \"a\"");
  expect_rejected(make_file("[]", ""), "the header is not a JSON object");
  expect_rejected(make_file(" {}", ""), "starting with '{'");

  // Entries.
  expect_rejected(make_file(R"({"w": 5})", ""), "tensor 'w': the entry is not an object, got 5");
  expect_rejected(make_file(R"({"w":{"shape":[0],"data_offsets":[0,0]}})", ""), "tensor 'w': the entry has no \"dtype\"");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,0]}})", ""), "the entry has no \"shape\"");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[0]}})", ""), "the entry has no \"data_offsets\"");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1}})", ""),
                  "tensor 'w': unknown field \"x\"");
  expect_rejected(make_file(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", eight),
                  "tensor 'w': unknown dtype \"F16\"");
  expect_rejected(make_file(R"({"w":{"dtype":7,"shape":[4],"data_offsets":[0,8]}})", eight), "unknown dtype 7");
  expect_rejected(make_file(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", ""),
                  "tensor 'w': shape must be an array of non-negative integers, got [-1]");
  expect_rejected(make_file(R"({"w":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", "ab"),
                  "shape must be an array of non-negative integers, got [2.0]");
  expect_rejected(make_file(R"({"w":{"dtype":"U8","shape":"2","data_offsets":[0,2]}})", "ab"),
                  "shape must be an array of non-negative integers");
  expect_rejected(make_file(R"({"w":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", eight),
                  "tensor 'w': shape [4611686018427387904,4] is too large");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight),
                  "tensor 'w': data_offsets must be two integers [begin, end] with 0 <= begin <= end, got [8,0]");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight),
                  "data_offsets must be two integers");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", eight),
                  "data_offsets must be two integers");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", eight),
                  "data_offsets must be two integers");

  // Sizes and positions.
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", std::string(20, 'x')),
                  "tensor 'w' of dtype F32 and shape [2, 3] needs 24 bytes, but its data_offsets [0,20] span 20");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", eight),
                  "tensor 'w': data_offsets [4,12] run past the end of the 8-byte buffer");
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, 'x')),
                  "tensors 'a' [0, 8) and 'b' [4, 12) overlap");
  expect_rejected(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "abcd"),
                  "tensors 'a' [0, 4) and 'b' [0, 4) overlap");
  expect_rejected(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})", std::string(12, 'x')),
                  "bytes [4, 8) of the buffer belong to no tensor");
  expect_rejected(make_file("{" + f32_entry + "}", eight + "extra"),
                  "bytes [8, 13) at the end of the buffer belong to no tensor");
  expect_rejected(make_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x00\x02", 3)),
                  "BOOL tensor 'm' holds the byte 2 at element 2 (must be 0 or 1)");

  // Metadata.
  expect_rejected(make_file(R"({"__metadata__":{"step":3}})", ""),
                  "__metadata__ must be an object of strings, but \"step\" is integer 3");
  expect_rejected(make_file(R"({"__metadata__":{"a":"ok","cfg":{"dim":4}}})", ""),
                  "but \"cfg\" is object {\"dim\":4}");
  expect_rejected(make_file(R"({"__metadata__":["x"]})", ""), "__metadata__ must be an object of strings, got [\"x\"]");

  // No file at all.
  expect_failure([&] { load_safetensors(path("missing.safetensors")); },
                 {"safetensors: " + path("missing.safetensors") + ": cannot read"});
}

TEST_F(Safetensors, EmptyFileOfTensorsIsValid) {
  save_safetensors(path("none.safetensors"), {});
  EXPECT_EQ(read_bytes(path("none.safetensors")), u64_le(8) + "{}      ");
  SafetensorsFile f = load_safetensors(path("none.safetensors"));
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
}

// ---- saving safely ------------------------------------------------------------------------------

TEST_F(Safetensors, SaveIntoAMissingDirectoryThrowsAndLeavesNothing) {
  std::string p = path("no/such/dir/model.safetensors");
  const float v = 1;
  expect_failure([&] { save_safetensors(p, {{"w", from_bytes({1}, DType::Float32, &v)}}); },
                 {"safetensors: " + p + ": ", "cannot create"});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(path("no")));
  EXPECT_TRUE(listing().empty());
}

TEST_F(Safetensors, AFailedSaveKeepsTheOldFileAndLeavesNoTemporary) {
  const float one = 1, two = 2;
  std::string p = path("model.safetensors");
  save_safetensors(p, {{"w", from_bytes({1}, DType::Float32, &one)}});
  std::string before = read_bytes(p);
  expect_failure([&] { save_safetensors(p, {{"w", from_bytes({1}, DType::Float32, &two)}, {"bad", Tensor()}}); },
                 {"safetensors: " + p + ": ", "tensor 'bad' is undefined"});
  expect_failure([&] { save_safetensors(p, {{"__metadata__", from_bytes({1}, DType::Float32, &two)}}); },
                 {"'__metadata__' is reserved"});
  expect_failure([&] { save_safetensors(p, {}, {{"k", "not utf-8 \xff"}}); }, {"not valid UTF-8"});
  EXPECT_EQ(read_bytes(p), before);
  // A successful save replaces the file whole.
  save_safetensors(p, {{"w", from_bytes({1}, DType::Float32, &two)}});
  EXPECT_EQ(load_safetensors(p).tensors.at("w").to_vector<float>(), (std::vector<float>{2}));
  EXPECT_EQ(listing(), (std::vector<std::string>{"model.safetensors"}));
}

// A save killed between writing its temporary and the rename leaves "<path>.tmp.<pid>": the next save to the
// same path removes it once no process of that id runs. A temporary of a live process (pid 1 always runs)
// may be another save under way, and stays; other files stay.
TEST_F(Safetensors, AStaleTemporaryOfAKilledSaveIsRemovedByTheNextSave) {
  const float one = 1;
  const std::string p = path("model.safetensors");
  // Process ids stop far below 999999999 (pid_max is at most 2^22).
  for (const char* name : {"model.safetensors.tmp.999999999", "model.safetensors.tmp.1", "other.safetensors.tmp.999999999"}) {
    std::ofstream(path(name)) << "half a checkpoint";
  }
  save_safetensors(p, {{"w", from_bytes({1}, DType::Float32, &one)}});
  EXPECT_EQ(listing(), (std::vector<std::string>{"model.safetensors", "model.safetensors.tmp.1",
                                                 "other.safetensors.tmp.999999999"}));
}

// ---- module checkpoints -------------------------------------------------------------------------

// weight [2, 3], bias [3], and a child with a parameter and a buffer: names weight, bias,
// norm.scale, norm.count.
struct Norm : Module {
  Norm() {
    register_parameter("scale", ops::full({3}, 1.0));
    register_buffer("count", ops::full({}, 0.0, DType::Int64));
  }
};
struct Tiny : Module {
  explicit Tiny(double fill, Shape weight_shape = {2, 3}) {
    register_parameter("weight", ops::full(weight_shape, fill));
    register_parameter("bias", ops::full({3}, fill + 0.5));
    norm = register_module("norm", std::make_shared<Norm>());
  }
  std::shared_ptr<Norm> norm;
};

std::map<std::string, std::string> snapshot(const Module& m) {
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = bytes_of(t);
  return out;
}

TEST_F(Safetensors, CheckpointRoundTripRestoresEveryTensorAndTheMetadata) {
  Tiny a(1.25);
  Json config = Json::object();
  config.set("dim", 64).set("depth", 4);
  save_checkpoint(path("ckpt.safetensors"), a, {{"step", "1200"}, {"config", config.dump()}});

  Tiny b(-3.0);
  ASSERT_NE(snapshot(a), snapshot(b));
  std::map<std::string, std::string> meta = load_checkpoint(path("ckpt.safetensors"), b);
  EXPECT_EQ(snapshot(a), snapshot(b));
  EXPECT_EQ(meta.at("step"), "1200");
  EXPECT_EQ(Json::parse(meta.at("config"))["dim"].as_int64(), 64);
  // The same tensors (handles), not new ones: loading updates the model in place.
  EXPECT_EQ(b.state_dict().at("weight").to_vector<float>(), std::vector<float>(6, 1.25f));
  EXPECT_EQ(b.state_dict().count("norm.count"), 1u);
}

TEST_F(Safetensors, MismatchedCheckpointsThrowNamingEveryProblemAndChangeNothing) {
  Tiny source(2.0);
  std::map<std::string, Tensor> state = source.state_dict();
  Tiny target(7.0);
  const auto before = snapshot(target);

  auto check = [&](const std::map<std::string, Tensor>& file, const std::vector<std::string>& parts) {
    save_safetensors(path("c.safetensors"), file);
    std::vector<std::string> all = {"load_checkpoint: " + path("c.safetensors") + ": the file does not match the model"};
    all.insert(all.end(), parts.begin(), parts.end());
    expect_failure([&] { load_checkpoint(path("c.safetensors"), target); }, all);
    EXPECT_EQ(snapshot(target), before);
  };

  auto missing = state;
  missing.erase("bias");
  check(missing, {"missing 'bias' (float32 [3])"});

  auto unexpected = state;
  unexpected["head.weight"] = ops::full({4}, 1.0);
  check(unexpected, {"unexpected 'head.weight' (float32 [4])"});

  auto wrong_shape = state;
  wrong_shape["weight"] = ops::full({3, 2}, 1.0);
  check(wrong_shape, {"'weight' is float32 [3, 2] in the file but float32 [2, 3] in the model"});

  auto wrong_dtype = state;
  wrong_dtype["norm.count"] = ops::full({}, 0.0, DType::Int32);
  check(wrong_dtype, {"'norm.count' is int32 [] in the file but int64 [] in the model"});

  // All at once: one message lists them all.
  auto everything = state;
  everything.erase("norm.scale");
  everything["extra"] = ops::full({1}, 1.0);
  everything["bias"] = ops::full({4}, 1.0);
  check(everything, {"missing 'norm.scale'", "unexpected 'extra'", "'bias' is float32 [4] in the file"});

  // A model of another shape, through the save_checkpoint path.
  Tiny other(1.0, {3, 3});
  save_checkpoint(path("other.safetensors"), other, {});
  expect_failure([&] { load_checkpoint(path("other.safetensors"), target); },
                 {"'weight' is float32 [3, 3] in the file but float32 [2, 3] in the model"});
  EXPECT_EQ(snapshot(target), before);
}

}  // namespace
