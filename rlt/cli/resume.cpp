#include "cli/resume.h"

#include <stdexcept>

#include "cli/common.h"
#include "nn/json.h"

namespace glance::cli {

namespace {

// The fields of ModelConfig::to_json and the options that set them (add_model_options).
struct FieldOption {
  const char* field;
  const char* option;
};
constexpr FieldOption kFieldOptions[] = {
    {"frames", "frames"}, {"image_size", "size"}, {"tubelet", "tubelet"}, {"patch", "patch"},
    {"dim", "dim"}, {"depth", "depth"}, {"heads", "heads"}, {"pos_encoding", "pos-encoding"},
    {"pos_kind", "pos-kind"}, {"length_encoding", "length-encoding"}, {"attention", "attention"},
    {"attention_options", "attention-options"}, {"embed_init", "embed-init"},
};

// "4", "3d", "true": a field's value as a user reads it.
std::string plain(const nn::Json& value) { return value.is_string() ? value.as_string() : value.dump(); }

// "--heads 8", "--no-length-encoding": the option as it was written.
std::string as_written(const Args& a, const std::string& option, const nn::Json& value) {
  if (value.is_bool()) return std::string(a.on(option) ? "--" : "--no-") + option;
  return "--" + option + " " + a.str(option);
}

}  // namespace

rlt::ModelConfig model_to_resume(const Args& a, const rlt::RunConfig& saved, const std::string& path, Device device) {
  // --preset sets the sizes at once: given with --load, they must agree as well (a size option given beside it
  // goes over it, as without --load).
  rlt::ModelConfig base = saved.model;
  if (a.given("preset")) {
    const rlt::ModelConfig preset = rlt::model_preset(a.str("preset"));
    base.frames = preset.frames, base.image_size = preset.image_size, base.tubelet = preset.tubelet;
    base.patch = preset.patch, base.dim = preset.dim, base.depth = preset.depth, base.heads = preset.heads;
  }
  rlt::ModelConfig asked = model_options_over(a, base);
  const nn::Json want = nn::Json::parse(asked.to_json()), have = nn::Json::parse(saved.model.to_json());
  for (const FieldOption& f : kFieldOptions) {
    if (want[f.field] == have[f.field]) continue;
    const std::string option = a.given(f.option) ? as_written(a, f.option, want[f.field]) : "--preset " + a.str("preset");
    throw std::invalid_argument(option + " contradicts the checkpoint '" + path + "' (" + f.field + " = " +
                                plain(have[f.field]) + "): leave it out to continue the checkpoint's model");
  }
  // The kernel may change (each computes the same function); by default the checkpoint's, on this device.
  asked.attention_kernel = attention_kernel_on(saved.model.attention_kernel, device);
  return asked;
}

}  // namespace glance::cli
