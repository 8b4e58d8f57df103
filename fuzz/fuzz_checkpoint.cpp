// Fuzzing checkpoint-to-model loading as `glance eval` and `glance predict` do it: the safetensors file, its
// "glance.config" read strictly (rlt/run_config.h), the model that config describes built, and the file's
// tensors checked against the model's (names, shapes, dtypes, finite values) and loaded into it
// (nn/training_state.h). Beyond "no crash": a model that loaded holds exactly the file's tensors.
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>

#include "fuzz_input.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/model.h"
#include "rlt/run_config.h"

namespace {
// The harness builds only models of at most this many weights (the estimate ModelConfig::validate uses, and
// the token grid times the width): read_run_config already refuses a config that needs more weights than the
// file holds, and this bound keeps every model the fuzzer builds small as well, so that runs stay fast.
constexpr double kFuzzMaxWeights = 2e6;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace glance;
  static const fuzz::InputFile input("checkpoint", ".safetensors");
  const std::string& path = input.write(data, size);
  rlt::RunConfig config;
  try {
    config = rlt::read_run_config(path);
  } catch (const std::exception&) {
    return 0;  // refused with a message
  }
  const rlt::ModelConfig& m = config.model;
  const double blocks = double(m.depth) * (4.0 + 2.0 * m.mlp_ratio) * double(m.dim) * double(m.dim);
  const double head = double(m.classes) * double(m.dim), grid = double(m.grid().size()) * double(m.dim);
  const double embed = double(m.dim) * double(m.channels * m.tubelet * m.patch * m.patch);
  if (blocks + head + grid + embed > kFuzzMaxWeights) return 0;
  std::unique_ptr<rlt::RLTransformer> model;
  try {
    model = std::make_unique<rlt::RLTransformer>(m);
    nn::load_model_from_training_state(path, *model);
  } catch (const std::exception&) {
    return 0;
  }
  const nn::SafetensorsFile file = nn::load_safetensors(path);
  for (const auto& [name, t] : model->state_dict()) {
    const auto it = file.tensors.find(name);
    fuzz::fuzz_check(it != file.tensors.end(), "checkpoint: a model tensor the file does not hold was accepted");
    const size_t nbytes = static_cast<size_t>(t.numel()) * t.itemsize();
    fuzz::fuzz_check(it->second.shape() == t.shape() && it->second.dtype() == t.dtype() && t.is_contiguous() &&
                         (nbytes == 0 || std::memcmp(it->second.raw_data(), t.raw_data(), nbytes) == 0),
                     "checkpoint: the loaded model differs from the file");
  }
  return 0;
}
