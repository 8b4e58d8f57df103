// Writes the seed corpus of every fuzz target: a few small valid files, made by glance itself, and edge cases
// the readers must take (an empty tensor, a scalar, a .npy of version 2, a Fortran-order array, grey and RGBA
// PNGs, a JPEG, a BMP). libFuzzer mutates these; a good seed shows it the shape of a valid input at once.
//   fuzz_make_corpus fuzz/corpus        (writes fuzz/corpus/<target>/*, replacing the files of the same name)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nn/json.h"
#include "nn/optim/adamw.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/image.h"
#include "rlt/model.h"
#include "rlt/run_config.h"
#include "stb_image_write.h"
#include "tensor/npy.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
namespace fs = std::filesystem;

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

Tensor counting(const Shape& shape, DType dtype) {
  Tensor t = ops::arange(0, static_cast<double>(numel_of(shape)));
  return ops::to_dtype(ops::reshape(t, shape), dtype);
}

void json_seeds(const fs::path& dir, const std::string& config) {
  write_text(dir / "object.json", R"({"step": 10, "loss": 0.25, "tags": ["a", "b"], "done": false, "none": null})");
  write_text(dir / "numbers.json", "[0, -0, 1.5e-7, -2.25E+3, 9223372036854775807, -9223372036854775808, 1e308]");
  write_text(dir / "strings.json", R"(["plain", "tab\tnew\nline", "\u00e9\ud83d\ude00", "\"quoted\" \\ \/"])");
  write_text(dir / "nested.json", "[[[[{\"a\": [{}]}]]]]");
  write_text(dir / "run_config.json", config);
}

void safetensors_seeds(const fs::path& dir) {
  nn::save_safetensors((dir / "dtypes.safetensors").string(),
                       {{"f32", counting({2, 3}, DType::Float32)}, {"f64", counting({3}, DType::Float64)},
                        {"i32", counting({2, 2}, DType::Int32)}, {"i64", counting({1}, DType::Int64)},
                        {"u8", counting({4}, DType::UInt8)}, {"bool", ops::to_dtype(counting({2}, DType::Float32), DType::Bool)}},
                       {{"format", "pt"}, {"note", "a seed"}});
  nn::save_safetensors((dir / "edges.safetensors").string(),
                       {{"empty", Tensor::empty({0, 3})}, {"scalar", counting({}, DType::Float32)}});
}

// A .npy file written by hand: version `major`.0 with `header` padded so the data starts at a multiple of 64.
std::string npy_file(int major, std::string header, const std::string& data) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  while ((10 + len_bytes - 2 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

void npy_seeds(const fs::path& dir) {
  save_npy((dir / "f32.npy").string(), counting({2, 3}, DType::Float32));
  save_npy((dir / "i64.npy").string(), counting({4}, DType::Int64));
  save_npy((dir / "u8.npy").string(), counting({2, 2, 2}, DType::UInt8));
  save_npy((dir / "scalar.npy").string(), counting({}, DType::Float64));
  const std::string four_floats("\0\0\0\0\0\0\x80\x3f\0\0\0\x40\0\0\x40\x40", 16);  // 0, 1, 2, 3 as <f4
  write_text(dir / "v2.npy", npy_file(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", four_floats));
  write_text(dir / "fortran.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four_floats));
  write_text(dir / "bool.npy", npy_file(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\1\0\1", 3)));
}

void frame_seeds(const fs::path& dir) {
  std::vector<uint8_t> pixels(6 * 5 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37);
  rlt::Image rgb(5, 6);
  rgb.rgb.assign(pixels.begin(), pixels.begin() + 5 * 6 * 3);
  rlt::save_png((dir / "rgb.png").string(), rgb);
  stbi_write_png((dir / "grey.png").string().c_str(), 6, 5, 1, pixels.data(), 6);
  stbi_write_png((dir / "rgba.png").string().c_str(), 6, 5, 4, pixels.data(), 6 * 4);
  stbi_write_bmp((dir / "rgb.bmp").string().c_str(), 6, 5, 3, pixels.data());
  stbi_write_jpg((dir / "rgb.jpg").string().c_str(), 6, 5, 3, pixels.data(), 90);
}

// A training state as `glance train --save` writes it, of a model small enough for the fuzzer to load often.
void checkpoint_seeds(const fs::path& dir) {
  for (const std::string attention : {"joint", "divided"}) {
    rlt::ModelConfig m;
    m.frames = 2, m.image_size = 8, m.tubelet = 2, m.patch = 4, m.classes = 2, m.dim = 8, m.depth = 1, m.heads = 2;
    m.attention = attention;
    m.validate();
    rlt::TokenizerConfig tok;
    tok.tubelet = m.tubelet, tok.patch = m.patch;
    rlt::RLTransformer model(m);
    nn::AdamW optimizer(nn::decay_groups(model, 1e-3, 0.05));
    nn::save_training_state((dir / (attention + ".safetensors")).string(), model, optimizer,
                            {3, 1, rlt::run_config_json(m, tok, {"left", "right"})});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus CORPUS_DIR   (e.g. fuzz/corpus)\n");
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* target : {"json", "safetensors", "npy", "frames", "checkpoint"}) fs::create_directories(root / target);
  rlt::ModelConfig m;
  m.frames = 2, m.image_size = 8, m.tubelet = 2, m.patch = 4, m.classes = 2, m.dim = 8, m.depth = 1, m.heads = 2;
  rlt::TokenizerConfig tok;
  tok.tubelet = m.tubelet, tok.patch = m.patch;
  json_seeds(root / "json", rlt::run_config_json(m, tok, {"left", "right"}));
  safetensors_seeds(root / "safetensors");
  npy_seeds(root / "npy");
  frame_seeds(root / "frames");
  checkpoint_seeds(root / "checkpoint");
  std::printf("fuzz_make_corpus: wrote the seeds under %s\n", root.string().c_str());
  return 0;
}
