// Safetensors: writing atomically, reading with every field checked. The format is in safetensors.h.
#include "nn/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>
#include <vector>

#include "nn/atomic_file.h"
#include "nn/json.h"
#include "tensor/ops.h"
#include "tensor/regular_file.h"

namespace glance::nn {

// The format stores elements little-endian; we copy tensor bytes straight to and from the file, which
// is only right on a little-endian machine (x86-64 and ARM64 both are).
static_assert(std::endian::native == std::endian::little, "safetensors.cpp assumes a little-endian host");

namespace {

// The reference implementation refuses headers over 100 MB; a header that big is damage or an attack
// (it would make us allocate and parse it), never a real checkpoint.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("safetensors: " + path + ": " + problem);
}

// The dtype codes of the format, for the DTypes a glance tensor can hold.
struct DTypeCode {
  DType dtype;
  const char* code;
};
constexpr DTypeCode kDTypeCodes[] = {
    {DType::Float32, "F32"}, {DType::Float64, "F64"}, {DType::Int32, "I32"},
    {DType::Int64, "I64"},   {DType::UInt8, "U8"},    {DType::Bool, "BOOL"},
};

const char* dtype_code(DType dtype) {
  for (const auto& d : kDTypeCodes) if (d.dtype == dtype) return d.code;
  throw std::logic_error("safetensors: no code for dtype");
}

std::optional<DType> dtype_from_code(const std::string& code) {
  for (const auto& d : kDTypeCodes) if (code == d.code) return d.dtype;
  return std::nullopt;
}

// ================================================================================================
// Saving
// ================================================================================================

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Everything that can fail for a reason other than I/O happens before the file is created.
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta.set(key, value);
    header.set("__metadata__", meta);
  }
  std::vector<std::pair<std::string, Tensor>> host;  // contiguous CPU tensors, in name order
  uint64_t offset = 0;                               // where the next tensor starts in the buffer
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail(path, "'__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined");
    Tensor c = ops::contiguous(ops::to_device(t, Device::cpu()));
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.itemsize();
    Json shape = Json::array();
    for (int64_t s : c.shape()) shape.push_back(s);
    Json entry = Json::object();
    entry.set("dtype", dtype_code(c.dtype()))
        .set("shape", shape)
        .set("data_offsets", Json::array().push_back(offset).push_back(offset + nbytes));
    header.set(name, entry);
    host.emplace_back(name, c);
    offset += nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const std::exception& e) {
    fail(path, std::string("cannot write the header: ") + e.what());  // e.g. a name that is not UTF-8
  }
  // Pad with spaces so the buffer starts 8-byte aligned (8 + N is a multiple of 8): a reader that
  // maps the file can then view F64/I64 data in place.
  while (text.size() % 8 != 0) text += ' ';
  if (text.size() > kMaxHeaderBytes) fail(path, "the header would be over 100 MB");

  // The 8-byte length, least significant byte first, then the header.
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  prefix += text;
  try {
    write_file_atomically(path, [&](std::FILE* file) {
      bool ok = std::fwrite(prefix.data(), 1, prefix.size(), file) == prefix.size();
      for (const auto& [name, t] : host) {
        const size_t nbytes = static_cast<size_t>(t.numel()) * t.itemsize();
        if (ok && nbytes > 0) ok = std::fwrite(t.raw_data(), 1, nbytes, file) == nbytes;
      }
      return ok;
    });
  } catch (const std::runtime_error& e) {
    fail(path, e.what());
  }
}

// ================================================================================================
// Loading
// ================================================================================================
namespace {

// One tensor as the header describes it, after validation.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // [begin, end) in the buffer
};

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// Checks one header entry {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}.
Entry parse_entry(const std::string& path, const std::string& name, const Json& value, uint64_t buffer_size) {
  const std::string what = "tensor '" + name + "'";
  if (!value.is_object()) fail(path, what + ": the entry is not an object, got " + value.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) fail(path, what + ": the entry has no \"" + key + "\"");
  }
  for (const auto& [key, _] : value.as_object()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") fail(path, what + ": unknown field \"" + key + "\"");
  }
  Entry e;
  e.name = name;

  const Json& dtype = value["dtype"];
  std::optional<DType> parsed = dtype.is_string() ? dtype_from_code(dtype.as_string()) : std::nullopt;
  if (!parsed) fail(path, what + ": unknown dtype " + dtype.dump() + " (glance reads F32, F64, I32, I64, U8, BOOL)");
  e.dtype = *parsed;

  // Shape: non-negative integers. The product of the non-zero sizes must fit in an int64, so that
  // numel, strides and byte counts cannot overflow.
  const Json& shape = value["shape"];
  bool shape_ok = shape.is_array();
  int64_t volume = 1;  // product of the non-zero sizes
  bool has_zero = false;
  for (size_t i = 0; shape_ok && i < shape.size(); ++i) {
    shape_ok = shape[i].is_int() && shape[i].as_int64() >= 0;
    if (!shape_ok) break;
    int64_t s = shape[i].as_int64();
    e.shape.push_back(s);
    if (s == 0) { has_zero = true; continue; }
    if (__builtin_mul_overflow(volume, s, &volume)) fail(path, what + ": shape " + shape.dump() + " is too large");
  }
  if (!shape_ok) fail(path, what + ": shape must be an array of non-negative integers, got " + shape.dump());
  int64_t numel = has_zero ? 0 : volume;

  const Json& offsets = value["data_offsets"];
  bool offsets_ok = offsets.is_array() && offsets.size() == 2 && offsets[0].is_int() && offsets[1].is_int() &&
                    offsets[0].as_int64() >= 0 && offsets[0].as_int64() <= offsets[1].as_int64();
  if (!offsets_ok) {
    fail(path, what + ": data_offsets must be two integers [begin, end] with 0 <= begin <= end, got " + offsets.dump());
  }
  e.begin = static_cast<uint64_t>(offsets[0].as_int64());
  e.end = static_cast<uint64_t>(offsets[1].as_int64());

  uint64_t itemsize = dtype_size(e.dtype);
  uint64_t expected = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), itemsize, &expected)) {
    fail(path, what + ": shape " + shape.dump() + " is too large");
  }
  if (e.end - e.begin != expected) {
    fail(path, what + " of dtype " + dtype_code(e.dtype) + " and shape " + shape_str(e.shape) + " needs " +
                   std::to_string(expected) + " bytes, but its data_offsets " + offsets.dump() + " span " +
                   std::to_string(e.end - e.begin));
  }
  if (e.end > buffer_size) {
    fail(path, what + ": data_offsets " + offsets.dump() + " run past the end of the " + std::to_string(buffer_size) +
                   "-byte buffer");
  }
  return e;
}

// The buffer must be exactly tiled by the tensors: sorted by offset, each starts where the previous
// ended. Overlaps would let two tensors alias; holes could hide a second file inside this one.
void check_layout(const std::string& path, std::vector<Entry>& entries, uint64_t buffer_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor) {
      fail(path, "tensors '" + previous->name + "' " + range_str(previous->begin, previous->end) + " and '" + e.name +
                     "' " + range_str(e.begin, e.end) + " overlap");
    }
    if (e.begin > cursor) {
      fail(path, "bytes " + range_str(cursor, e.begin) + " of the buffer belong to no tensor (the format forbids holes)");
    }
    cursor = e.end;
    previous = &e;
  }
  if (cursor != buffer_size) {
    fail(path, "bytes " + range_str(cursor, buffer_size) + " at the end of the buffer belong to no tensor");
  }
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const Json& value) {
  if (!value.is_object()) fail(path, "__metadata__ must be an object of strings, got " + value.dump());
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : value.as_object()) {
    if (!v.is_string()) {
      fail(path, "__metadata__ must be an object of strings, but \"" + key + "\" is " + Json::type_name(v.type()) +
                     " " + v.dump());
    }
    out[key] = v.as_string();
  }
  return out;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  std::error_code ec;
  // A FIFO would block the open below, a device has no size: only a regular file is read (a missing one fails
  // below with the system's reason).
  if (std::filesystem::exists(path, ec)) {
    if (const std::string problem = regular_file_problem(path); !problem.empty()) fail(path, problem);
  }
  uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  auto read_exactly = [&](void* dst, uint64_t offset, uint64_t n, const std::string& what) {
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in || static_cast<uint64_t>(in.gcount()) != n) fail(path, "the file ended while reading " + what);
  };

  // ---- the header length ----
  if (file_size < 8) fail(path, "the file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  unsigned char length_bytes[8];
  read_exactly(length_bytes, 0, 8, "the header length");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
  if (header_size == 0) fail(path, "the header length is 0");
  if (header_size > kMaxHeaderBytes) fail(path, "the header length " + std::to_string(header_size) + " is over the 100 MB limit");
  if (header_size > file_size - 8) {
    fail(path, "the header length " + std::to_string(header_size) + " is larger than the " +
                   std::to_string(file_size - 8) + " bytes after it");
  }
  const uint64_t buffer_start = 8 + header_size;
  const uint64_t buffer_size = file_size - buffer_start;

  // ---- the header ----
  std::string text(header_size, '\0');
  read_exactly(text.data(), 8, header_size, "the header");
  Json header;
  try {
    header = Json::parse(text);
  } catch (const std::exception& e) {
    fail(path, std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object() || text[0] != '{') fail(path, "the header is not a JSON object starting with '{'");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.as_object()) {
    if (name == "__metadata__") out.metadata = parse_metadata(path, value);
    else entries.push_back(parse_entry(path, name, value, buffer_size));
  }
  check_layout(path, entries, buffer_size);

  // ---- the data: only now, with every offset known to be sound ----
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0) read_exactly(t.raw_data(), buffer_start + e.begin, nbytes, "tensor '" + e.name + "'");
    if (e.dtype == DType::Bool) {
      // A C++ bool must hold 0 or 1; any other byte would be undefined behaviour when read.
      const uint8_t* bytes = static_cast<const uint8_t*>(t.raw_data());
      for (uint64_t i = 0; i < nbytes; ++i) {
        if (bytes[i] > 1) {
          fail(path, "BOOL tensor '" + e.name + "' holds the byte " + std::to_string(bytes[i]) + " at element " +
                         std::to_string(i) + " (must be 0 or 1)");
        }
      }
    }
    out.tensors.emplace(e.name, t);
  }
  return out;
}

// ================================================================================================
// Module checkpoints
// ================================================================================================

void save_checkpoint(const std::string& path, const Module& model, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, model.state_dict(), metadata);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model) {
  SafetensorsFile file = load_safetensors(path);
  std::map<std::string, Tensor> mine = model.state_dict();

  // Collect every difference, so one failed load tells the whole story.
  auto describe = [](const Tensor& t) { return std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape()); };
  std::vector<std::string> problems;
  for (const auto& [name, t] : mine) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      problems.push_back("missing '" + name + "' (" + describe(t) + ")");
    } else if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      problems.push_back("'" + name + "' is " + describe(it->second) + " in the file but " + describe(t) +
                         " in the model");
    }
  }
  for (const auto& [name, t] : file.tensors) {
    if (!mine.count(name)) problems.push_back("unexpected '" + name + "' (" + describe(t) + ")");
  }
  if (!problems.empty()) {
    std::string message = "load_checkpoint: " + path + ": the file does not match the model: ";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw std::runtime_error(message);
  }

  // Move the values onto the model's devices before copying any, so a failure here changes nothing.
  for (auto& [name, t] : file.tensors) t = ops::to_device(t, mine.at(name).device());
  model.load_state_dict(file.tensors, /*strict=*/true);
  return file.metadata;
}

}  // namespace glance::nn
