// Options shared by `glance train`, `glance demo` and `glance eval`: the model, the tokenizer, the data
// (built-in generator or frame folders) and the optimisation settings, declared once.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "cli/args.h"
#include "rlt/clip_datasets.h"
#include "rlt/trainer.h"

namespace glance::cli {

void add_model_options(Args& args, const std::string& preset = "tiny");
void add_tokenizer_options(Args& args);
void add_data_options(Args& args, int64_t train_clips, int64_t val_clips);  // with add_frame_limit_option
// --max-frame-side: frames larger than this are refused from their header, before decoding (rlt/image.h).
void add_frame_limit_option(Args& args);
// The built-in dataset's motion: objects, object-size, speed, pan, noise (each help text after `help_prefix`).
void add_motion_options(Args& args, const std::string& help_prefix);
void motion_options_into(const Args& args, rlt::SyntheticVideoConfig& config);
void add_optimizer_options(Args& args, int64_t epochs, int64_t batch_size, const std::string& lr);

rlt::ModelConfig model_from(const Args& args);  // the preset with the options given over it, validated
// `base` with the model options that were given over it (the others leave it as it is), validated.
rlt::ModelConfig model_options_over(const Args& args, rlt::ModelConfig base);
// "landmarks=8,iterations=6" -> {landmarks: 8, iterations: 6}; throws naming a malformed item.
std::map<std::string, double> parse_attention_options(const std::string& text);
// The options of add_optimizer_options (epochs, steps, batch size, lr, weight decay, label smoothing,
// seed) into `options`.
void optimizer_options_from(const Args& args, rlt::TrainOptions& options);
rlt::TokenizerConfig tokenizer_from(const Args& args, const rlt::ModelConfig& model);
// `base` with the tokenizer options that were given over it; tubelet and patch are the model's.
rlt::TokenizerConfig tokenizer_options_over(const Args& args, const rlt::ModelConfig& model, rlt::TokenizerConfig base);
rlt::SyntheticVideoConfig synthetic_from(const Args& args, const rlt::ModelConfig& model, int64_t count, uint64_t seed);
rlt::FolderOptions folder_from(const Args& args, const rlt::ModelConfig& model);

// Throws naming --<option>, the root and the first problems check_frame_folders finds (rlt/data_check.h), with
// the sampling and frame-size limit of `folder`.
void require_good_data(const std::string& root, const std::string& option, const rlt::FolderOptions& folder);

struct Datasets {
  std::unique_ptr<rlt::VideoDataset> train, val;
};
// --data DIR (and --val-data DIR) or the built-in generator (train and validation from different seeds).
Datasets datasets_from(const Args& args, const rlt::ModelConfig& model);

// --device as a Device, checked at once: "cuda" fails with the backend's reason when glance was built without
// CUDA or no GPU is present.
Device device_from(const Args& args);
// --attention-kernel for a run on `device`: when not given, "device" on the CPU (the CPU backend's attention) and
// fused on CUDA (the same kernel, by its name); a kernel that cannot run on the device fails here, naming the ones that can. --precision bf16 / fp16
// (CUDA only) picks fused_bf16 / fused_fp16.
std::string attention_kernel_for(const Args& args, Device device);
// The kernel a saved model uses on `device` (eval, predict): fused* on the CPU becomes tiled, tiled on CUDA becomes
// fused. Kernels compute the same function (each is tested against the reference), so this changes no result
// beyond rounding.
std::string attention_kernel_on(const std::string& kernel, Device device);

// The result of a run as a JSON object text.
std::string result_json(const rlt::RunResult& r);

}  // namespace glance::cli
