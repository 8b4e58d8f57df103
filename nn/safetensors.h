// Safetensors: the checkpoint format PyTorch and Hugging Face read (https://huggingface.co/docs/safetensors).
//
// A file is three parts:
//
//   [ 8 bytes ]  N, the header length, an unsigned 64-bit little-endian integer
//   [ N bytes ]  the header: a JSON object, padded with spaces so that 8 + N is a multiple of 8
//                  {"__metadata__": {"step": "1200", "config": "{...}"},          <- optional, strings only
//                   "fc.bias":   {"dtype": "F32", "shape": [4],    "data_offsets": [0, 16]},
//                   "fc.weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [16, 64]}}
//   [ rest ]     the byte buffer: each tensor's elements, row-major and little-endian, at
//                [begin, end) counted from the start of the buffer
//
// Why this format and not our own: it is trivial to read (no code runs while loading, unlike a
// pickle), a tensor can be found without reading the others, and torch/numpy/jax all load it, so a
// glance checkpoint opens in PyTorch with `safetensors.torch.load_file`.
//
// glance writes the tensors in the order of their names, back to back (the buffer has no holes), and
// reads any valid file, checking everything a hostile or damaged file could get wrong before it
// touches a byte of data. dtypes: F32, F64, I32, I64, U8, BOOL (the types a glance Tensor can hold).
#pragma once
#include <map>
#include <string>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace glance::nn {

// Writes `tensors` (any device and layout; copied to the CPU and made contiguous) and string
// `metadata`. Atomic and durable (nn/atomic_file.h): the bytes go to "<path>.tmp.<pid>", fsync'ed, renamed
// over `path` and the folder fsync'ed, so `path` is either the old file or the new one, never half of one;
// a temporary left by a killed writer is removed. Throws std::runtime_error("safetensors: <path>: <problem>")
// and leaves no file behind on failure.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Reads and validates a whole file. Throws std::runtime_error("safetensors: <path>: <problem>").
SafetensorsFile load_safetensors(const std::string& path);

// ---- checkpoints of a Module ----
// The metadata is where a trainer keeps what is not a tensor (model config, step, epoch, RNG state,
// optimizer settings), each as a string, usually a JSON text (nn/json.h).
void save_checkpoint(const std::string& path, const Module& model, const std::map<std::string, std::string>& metadata);
// Loads the tensors into `model` (onto the devices its tensors are on) and returns the metadata.
// The names, shapes and dtypes in the file must match model.state_dict() exactly; otherwise throws
// a message listing every missing name, unexpected name and mismatch, and changes nothing.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model);

}  // namespace glance::nn
