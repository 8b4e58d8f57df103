#include "cli/common.h"

#include <cstdlib>
#include <stdexcept>

#include "nn/attention/registry.h"
#include "nn/json.h"
#include "rlt/data_check.h"
#include "tensor/backend.h"
#include "tensor/device.h"

namespace glance::cli {

void add_model_options(Args& a, const std::string& preset) {
  a.option("preset", preset, "model preset: tiny (16 x 32 x 32 clips, dim 64), small (16 x 112 x 112, dim 192), base (ViT-B, 224)");
  a.option("dim", "", "override the preset's embedding width", Range::integers(1, rlt::ModelLimits::dim));
  a.option("depth", "", "override the preset's number of blocks", Range::integers(1, rlt::ModelLimits::depth));
  a.option("heads", "", "override the preset's number of heads", Range::integers(1, rlt::ModelLimits::dim));
  a.option("frames", "", "override the preset's frames per clip", Range::integers(1, rlt::ModelLimits::frames));
  a.option("size", "", "override the preset's frame size (pixels; frames are size x size)", Range::integers(1, rlt::ModelLimits::image_size));
  a.flag("pos-encoding", true, "add the sinusoidal positional encoding of each run's start");
  a.option("pos-kind", "3d", "positional table: 3d (factorised t, h, w) or 1d (VideoMAE's flat index, the paper)");
  a.flag("length-encoding", true, "add the learned run-length encoding");
  a.option("attention", "joint", "attention design (glance variants lists them): joint, divided, ...");
  a.option("attention-options", "", "the design's knobs as name=value,name=value (glance variants lists them)");
  a.option("embed-init", "random", "tubelet embedding init: random, or central (ViViT: a 2-D kernel on the central frame)");
  a.option("attention-kernel", "device", "softmax-attention kernel: device (the default: the device's own kernel), reference (materialised scores, plain), tiled (CPU) or fused (CUDA; also fused_deterministic, fused_bf16, fused_fp16)");
}

void add_tokenizer_options(Args& a) {
  a.flag("rlt", true, "drop static tubelets (--no-rlt: dense, every tubelet kept)");
  a.option("drop", "", "token policy: rlt, dense or random (random: RLT's token count at random places)");
  a.option("tau", "0.1", "keep a tubelet iff its static score is > tau (ImageNet-normalised units)", Range::numbers(0, 1000));
  a.option("compare", "adjacent", "adjacent (the paper: previous tubelet) or anchor (the run's first tubelet)");
  a.option("tubelet", "", "override frames per tubelet (default: the preset's, 2)", Range::integers(1, rlt::ModelLimits::frames));
  a.option("patch", "", "override the tubelet's side in pixels (default: the preset's, 16)", Range::integers(1, rlt::ModelLimits::image_size));
}

void add_data_options(Args& a, int64_t train_clips, int64_t val_clips) {
  a.option("data", "", "root/<class>/<clip>/<frames> to train on (default: the built-in dataset)");
  a.option("val-data", "", "validation frames in the same layout (default with --data: none)");
  a.option("frames-per-clip", "", "frames sampled per clip from --data (default: the model's frames)", Range::integers(1, rlt::ModelLimits::frames));
  a.option("interval", "4", "take every interval-th frame from --data", Range::integers(1, 10000));
  add_frame_limit_option(a);
  a.flag("check-data", true, "check --data (and --val-data) before training, as glance check-data does: every clip "
                             "long enough, every frame a readable image of its clip's size");
  a.option("eval-clips", "1", "clips per video at evaluation (softmax averaged)", Range::integers(1, 1000));
  a.flag("flip", true, "random horizontal flips when training on --data");
  a.option("train-clips", std::to_string(train_clips), "built-in dataset: training clips", Range::integers(1, 10000000));
  a.option("val-clips", std::to_string(val_clips), "built-in dataset: validation clips", Range::integers(1, 10000000));
  add_motion_options(a, "built-in dataset: ");
}

void add_frame_limit_option(Args& a) {
  a.option("max-frame-side", std::to_string(rlt::kDefaultMaxFrameSide),
           "refuse frames wider or taller than this many pixels, from their header, before decoding",
           Range::integers(1, rlt::kMaxImageSide));
}

void add_motion_options(Args& a, const std::string& help_prefix) {
  a.option("objects", "1", help_prefix + "moving objects per clip", Range::integers(1, 64));
  a.option("object-size", "8", help_prefix + "object side in pixels", Range::integers(2, rlt::ModelLimits::image_size));
  a.option("speed", "1", help_prefix + "object speed, pixels per frame", Range::numbers(0, 1000));
  a.option("pan", "0", help_prefix + "camera pan, pixels per frame", Range::numbers(0, 1000));
  a.option("noise", "0", help_prefix + "sensor noise std, grey levels", Range::numbers(0, 255));
}

void motion_options_into(const Args& a, rlt::SyntheticVideoConfig& s) {
  s.objects = a.integer("objects");
  s.object_size = a.integer("object-size");
  s.speed = a.number("speed");
  s.pan = a.number("pan");
  s.noise = a.number("noise");
}

void add_optimizer_options(Args& a, int64_t epochs, int64_t batch_size, const std::string& lr) {
  a.option("epochs", std::to_string(epochs), "passes over the training clips", Range::integers(1, 1000000));
  a.option("steps", "0", "> 0: train exactly this many steps instead", Range::integers(0, 1000000000000));
  a.option("batch-size", std::to_string(batch_size), "clips per step", Range::integers(1, 65536));
  a.option("lr", lr, "peak learning rate (AdamW; linear warm-up, cosine decay)", Range::above(0, 10));
  a.option("weight-decay", "0.05", "AdamW's decoupled weight decay", Range::numbers(0, 10));
  a.option("label-smoothing", "0", "cross-entropy label smoothing", Range::numbers(0, 1));
  a.option("seed", "0", "seed for init, shuffling, augmentation and the built-in dataset", Range::integers(0, INT64_MAX));
  a.option("device", "cpu", "cpu or cuda (cuda:N): where the model trains and the tokenizer runs");
  a.option("precision", "fp32", "attention core precision: fp32, or with --device cuda bf16 / fp16 (tensor cores; "
                                "fp32 weights; fp16 adds dynamic loss scaling)");
}

rlt::ModelConfig model_options_over(const Args& a, rlt::ModelConfig m) {
  if (a.given("dim")) m.dim = a.integer("dim");
  if (a.given("depth")) m.depth = a.integer("depth");
  if (a.given("heads")) m.heads = a.integer("heads");
  if (a.given("frames")) m.frames = a.integer("frames");
  if (a.given("size")) m.image_size = a.integer("size");
  if (a.given("tubelet")) m.tubelet = a.integer("tubelet");
  if (a.given("patch")) m.patch = a.integer("patch");
  // The options' defaults are ModelConfig's: only a given option changes `m`.
  if (a.given("pos-encoding")) m.pos_encoding = a.on("pos-encoding");
  if (a.given("length-encoding")) m.length_encoding = a.on("length-encoding");
  if (a.given("pos-kind")) m.pos_kind = a.str("pos-kind");
  if (a.given("attention")) m.attention = a.str("attention");
  if (a.given("embed-init")) m.embed_init = a.str("embed-init");
  if (a.given("attention-kernel")) m.attention_kernel = a.str("attention-kernel");
  if (a.given("attention-options")) m.attention_options = parse_attention_options(a.str("attention-options"));
  m.validate();  // sizes in range, names known: nothing is allocated for a model before this passed
  return m;
}

rlt::ModelConfig model_from(const Args& a) { return model_options_over(a, rlt::model_preset(a.str("preset"))); }

std::map<std::string, double> parse_attention_options(const std::string& text) {
  std::map<std::string, double> options;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("--attention-options: '" + item + "' is not name=value");
    }
    const std::string value = item.substr(eq + 1);
    char* parsed_end = nullptr;
    const double v = std::strtod(value.c_str(), &parsed_end);
    if (value.empty() || *parsed_end != '\0') {
      throw std::invalid_argument("--attention-options: value '" + value + "' of '" + item.substr(0, eq) +
                                  "' is not a number");
    }
    options[item.substr(0, eq)] = v;
    start = end + 1;
  }
  return options;
}

void optimizer_options_from(const Args& a, rlt::TrainOptions& o) {
  o.epochs = a.integer("epochs");
  o.steps = a.integer("steps");
  o.batch_size = a.integer("batch-size");
  o.lr = a.number("lr");
  o.weight_decay = a.number("weight-decay");
  o.label_smoothing = a.number("label-smoothing");
  o.seed = static_cast<uint64_t>(a.integer("seed"));
  o.loss_scaling = o.model.attention_kernel == "fused_fp16";  // fp16 gradients underflow without it
}

rlt::TokenizerConfig tokenizer_from(const Args& a, const rlt::ModelConfig& m) {
  rlt::TokenizerConfig t;
  t.tau = a.number("tau");
  t.policy = a.on("rlt") ? rlt::DropPolicy::RLT : rlt::DropPolicy::Dense;
  return tokenizer_options_over(a, m, t);
}

rlt::TokenizerConfig tokenizer_options_over(const Args& a, const rlt::ModelConfig& m, rlt::TokenizerConfig t) {
  t.tubelet = m.tubelet;
  t.patch = m.patch;
  if (a.given("tau")) t.tau = a.number("tau");
  if (a.given("rlt")) t.policy = a.on("rlt") ? rlt::DropPolicy::RLT : rlt::DropPolicy::Dense;
  if (a.given("drop")) t.policy = rlt::parse_drop_policy(a.str("drop"));
  if (a.given("compare")) t.compare = rlt::parse_compare_mode(a.str("compare"));
  return t;
}

rlt::SyntheticVideoConfig synthetic_from(const Args& a, const rlt::ModelConfig& m, int64_t count, uint64_t seed) {
  rlt::SyntheticVideoConfig s;
  s.count = count;
  s.frames = m.frames;
  s.size = m.image_size;
  motion_options_into(a, s);
  s.seed = seed;
  return s;
}

rlt::FolderOptions folder_from(const Args& a, const rlt::ModelConfig& m) {
  rlt::FolderOptions f;
  f.sampling.frames_per_clip = a.given("frames-per-clip") ? a.integer("frames-per-clip") : m.frames;
  if (f.sampling.frames_per_clip != m.frames) {
    throw std::invalid_argument("--frames-per-clip " + std::to_string(f.sampling.frames_per_clip) +
                                " differs from the model's " + std::to_string(m.frames) + " frames (use --frames)");
  }
  f.sampling.interval = a.integer("interval");
  f.size = m.image_size;
  f.flip = a.on("flip");
  f.eval_clips = a.integer("eval-clips");
  f.max_frame_side = a.integer("max-frame-side");
  return f;
}

void require_good_data(const std::string& root, const std::string& option, const rlt::FolderOptions& folder) {
  const rlt::DataCheck check = rlt::check_frame_folders(root, folder.sampling, 3, folder.max_frame_side);
  if (check.problem_count == 0) return;
  std::string message = "--" + option + " " + root + ": " + std::to_string(check.problem_count) +
                        " problem(s) that would stop training when a batch met them: ";
  for (size_t i = 0; i < check.problems.size(); ++i) message += (i ? "; " : "") + check.problems[i];
  throw std::invalid_argument(message + " (glance check-data lists them all; --no-check-data skips this check)");
}

Datasets datasets_from(const Args& a, const rlt::ModelConfig& m) {
  Datasets d;
  const uint64_t seed = static_cast<uint64_t>(a.integer("seed"));
  if (!a.str("data").empty()) {
    if (a.on("check-data")) {
      require_good_data(a.str("data"), "data", folder_from(a, m));
      if (!a.str("val-data").empty()) require_good_data(a.str("val-data"), "val-data", folder_from(a, m));
    }
    d.train = std::make_unique<rlt::FolderClips>(a.str("data"), folder_from(a, m));
    if (!a.str("val-data").empty()) d.val = std::make_unique<rlt::FolderClips>(a.str("val-data"), folder_from(a, m));
  } else {
    // Validation clips come from another seed: different backgrounds, shapes, colours and positions.
    d.train = std::make_unique<rlt::SyntheticClips>(synthetic_from(a, m, a.integer("train-clips"), 2 * seed + 1));
    d.val = std::make_unique<rlt::SyntheticClips>(synthetic_from(a, m, a.integer("val-clips"), 2 * seed + 2));
  }
  return d;
}

Device device_from(const Args& a) {
  const std::string text = a.str("device");
  Device device;
  try {
    device = parse_device(text);
    backend_for(device);  // fails here, not mid-run: built without CUDA, backend not linked, no device
  } catch (const std::exception& e) {
    throw std::invalid_argument("--device " + text + ": " + e.what());
  }
  return device;
}

namespace {
bool is_cuda_kernel(const std::string& kernel) { return kernel.rfind("fused", 0) == 0; }
}  // namespace

std::string attention_kernel_for(const Args& a, Device device) {
  const std::string precision = a.str("precision");
  if (precision != "fp32" && precision != "bf16" && precision != "fp16") {
    throw std::invalid_argument("--precision must be fp32, bf16 or fp16, got '" + precision + "'");
  }
  if (precision != "fp32") {
    if (device.is_cpu()) {
      throw std::invalid_argument("--precision " + precision + " runs the attention core on tensor cores: it needs "
                                  "--device cuda (the CPU kernels compute in fp32)");
    }
    const std::string kernel = "fused_" + precision;
    if (a.given("attention-kernel") && a.str("attention-kernel") != kernel) {
      throw std::invalid_argument("--precision " + precision + " uses the attention kernel " + kernel +
                                  "; --attention-kernel " + a.str("attention-kernel") + " contradicts it");
    }
    return kernel;
  }
  const std::string kernel = a.str("attention-kernel");
  if (!a.given("attention-kernel")) return device.is_cpu() ? kernel : "fused";
  if (device.is_cpu() && is_cuda_kernel(kernel)) {
    throw std::invalid_argument("--attention-kernel " + kernel + " runs on CUDA devices only; with --device cpu use "
                                "reference or tiled");
  }
  if (!device.is_cpu() && kernel == "tiled") {
    throw std::invalid_argument("--attention-kernel tiled is the CPU kernel; with --device " + device.str() +
                                " use fused (the CUDA kernel), fused_deterministic, fused_bf16, fused_fp16 or reference");
  }
  return kernel;
}

std::string attention_kernel_on(const std::string& kernel, Device device) {
  if (device.is_cpu() && is_cuda_kernel(kernel)) return "tiled";
  if (!device.is_cpu() && kernel == "tiled") return "fused";
  return kernel;
}

std::string result_json(const rlt::RunResult& r) {
  nn::Json j = nn::Json::object();
  j.set("val_acc", r.val.accuracy).set("val_loss", r.val.loss).set("kept_fraction", r.kept_fraction);
  j.set("clips_per_s", r.clips_per_s).set("steps", r.steps).set("clips", r.clips).set("seconds", r.seconds);
  j.set("final_train_loss", r.final_loss).set("parameters", r.parameters).set("step_ms", r.step_ms);
  j.set("forward_gflop_per_clip", r.forward_gflop_per_clip).set("peak_memory_mb", r.peak_memory_mb);
  if (r.loss_scale > 0) j.set("loss_scale", r.loss_scale).set("skipped_steps", r.skipped_steps);
  if (r.parallel.ranks > 1) {
    const rlt::ParallelResult& p = r.parallel;
    nn::Json d = nn::Json::object();
    d.set("ranks", p.ranks).set("shard", p.shard).set("transport", p.transport).set("imbalance", p.imbalance);
    if (p.shard == "tokens") d.set("imbalance_by_clips", p.imbalance_by_clips).set("imbalance_by_tokens", p.imbalance_by_tokens);
    d.set("comm_ms_per_step", p.comm_ms_per_step).set("wait_ms_per_step", p.wait_ms_per_step);
    d.set("allreduce_bytes_per_step", p.allreduce_bytes_per_step).set("buckets", p.buckets);
    d.set("buckets_started_in_backward", p.buckets_started_in_backward);
    j.set("parallel", d);
  }
  return j.dump();
}

}  // namespace glance::cli
