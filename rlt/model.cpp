#include "rlt/model.h"

#include <cmath>
#include <stdexcept>

#include "autograd/functions.h"
#include "nn/attention/kernel.h"
#include "nn/attention/registry.h"
#include "nn/init.h"
#include "nn/json.h"
#include "rlt/strict_json.h"
#include "tensor/ops.h"

namespace glance::rlt {

namespace {

void check_one_of(const char* field, const std::string& value, const std::vector<std::string>& allowed) {
  for (const std::string& a : allowed) {
    if (value == a) return;
  }
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw std::invalid_argument(std::string("model config: ") + field + " = '" + value + "' (choose " + list + ")");
}

}  // namespace

double ModelConfig::minimum_parameters() const {
  const double d = double(dim), hidden = double(static_cast<int64_t>(double(dim) * mlp_ratio));  // as nn/transformer.cpp
  return double(depth) * (4.0 * d * d + 2.0 * d * hidden) + double(classes) * d;
}

void ModelConfig::validate() const {
  auto in_range = [](const char* field, int64_t v, int64_t most) {
    if (v < 1 || v > most) {
      throw std::invalid_argument(std::string("model config: ") + field + " = " + std::to_string(v) +
                                  (v < 1 ? " must be >= 1" : " must be <= " + std::to_string(most)));
    }
  };
  in_range("frames", frames, ModelLimits::frames), in_range("image_size", image_size, ModelLimits::image_size);
  in_range("channels", channels, 3), in_range("tubelet", tubelet, frames), in_range("patch", patch, image_size);
  if (classes < 0 || classes > ModelLimits::classes) {  // 0: an encoder without a head (a converted checkpoint)
    throw std::invalid_argument("model config: classes = " + std::to_string(classes) + " must be in [0, " +
                                std::to_string(ModelLimits::classes) + "]");
  }
  in_range("dim", dim, ModelLimits::dim), in_range("depth", depth, ModelLimits::depth);
  in_range("heads", heads, dim);
  if (frames % tubelet != 0) {
    throw std::invalid_argument("model config: frames = " + std::to_string(frames) + " is not divisible by tubelet = " +
                                std::to_string(tubelet));
  }
  if (image_size % patch != 0) {
    throw std::invalid_argument("model config: image_size = " + std::to_string(image_size) +
                                " is not divisible by patch = " + std::to_string(patch));
  }
  if (dim % heads != 0) {
    throw std::invalid_argument("model config: dim = " + std::to_string(dim) + " is not divisible by heads = " +
                                std::to_string(heads));
  }
  if (channels != 3) throw std::invalid_argument("model config: channels must be 3 (RGB frames)");
  for (const auto& [field, eps] : {std::pair{"norm_eps", norm_eps}, std::pair{"head_norm_eps", head_norm_eps}}) {
    if (!(eps > 0 && eps < 1)) {  // NaN fails too
      throw std::invalid_argument(std::string("model config: ") + field + " = " + std::to_string(eps) + " must be in (0, 1)");
    }
  }
  if (!(mlp_ratio > 0 && mlp_ratio <= ModelLimits::mlp_ratio)) {  // NaN fails too
    throw std::invalid_argument("model config: mlp_ratio = " + std::to_string(mlp_ratio) + " must be in (0, " +
                                std::to_string(int(ModelLimits::mlp_ratio)) + "]");
  }
  if (!(drop_path >= 0 && drop_path < 1)) {
    throw std::invalid_argument("model config: drop_path = " + std::to_string(drop_path) + " must be in [0, 1)");
  }
  const int64_t tokens = grid().size();  // each factor <= 4096 here: no overflow
  if (tokens > ModelLimits::tokens_per_clip) {
    throw std::invalid_argument("model config: " + std::to_string(tokens) + " tokens per clip (frames / tubelet x (" +
                                "image_size / patch)^2) exceed " + std::to_string(ModelLimits::tokens_per_clip));
  }
  const double parameters = minimum_parameters();
  if (parameters > ModelLimits::parameters) {
    throw std::invalid_argument("model config: dim = " + std::to_string(dim) + ", depth = " + std::to_string(depth) +
                                " and classes = " + std::to_string(classes) + " make about " +
                                std::to_string(int64_t(parameters / 1e6)) + " million parameters (at most " +
                                std::to_string(int64_t(ModelLimits::parameters / 1e6)) + " million)");
  }
  check_one_of("pos_kind", pos_kind, {"3d", "1d", "table"});
  check_one_of("embed_init", embed_init, {"random", "central"});
  // The softmax kernels a config may name: the CPU's and the CUDA build's (a CUDA checkpoint opens on the CPU
  // with its kernel mapped to a CPU one, rlt/cli/common.h).
  check_one_of("attention_kernel", attention_kernel, nn::attention_kernel_names());
  nn::attention_variant(attention);  // an unknown design fails, listing the known ones
  for (const auto& [name, value] : attention_options) {
    if (!std::isfinite(value)) {
      throw std::invalid_argument("model config: attention option " + name + " = " + std::to_string(value) +
                                  " is not finite");
    }
  }
}

std::string ModelConfig::to_json() const {
  nn::Json j = nn::Json::object();
  j.set("frames", frames).set("image_size", image_size).set("channels", channels);
  j.set("tubelet", tubelet).set("patch", patch).set("classes", classes);
  j.set("dim", dim).set("depth", depth).set("heads", heads);
  j.set("mlp_ratio", mlp_ratio).set("drop_path", drop_path).set("norm_eps", norm_eps).set("head_norm_eps", head_norm_eps);
  j.set("pos_encoding", pos_encoding).set("pos_kind", pos_kind).set("length_encoding", length_encoding);
  j.set("attention_kernel", attention_kernel).set("attention", attention).set("embed_init", embed_init);
  nn::Json options = nn::Json::object();
  for (const auto& [name, value] : attention_options) options.set(name, value);
  j.set("attention_options", options);
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  const nn::Json j = nn::Json::parse(text);
  require_known_keys(j, {"frames", "image_size", "channels", "tubelet", "patch", "classes", "dim", "depth", "heads",
                             "mlp_ratio", "drop_path", "norm_eps", "head_norm_eps", "pos_encoding", "pos_kind",
                             "length_encoding",
                             "attention_kernel", "attention", "embed_init", "attention_options"}, "model config");
  ModelConfig c;
  c.frames = j["frames"].as_int64(), c.image_size = j["image_size"].as_int64(), c.channels = j["channels"].as_int64();
  c.tubelet = j["tubelet"].as_int64(), c.patch = j["patch"].as_int64(), c.classes = j["classes"].as_int64();
  c.dim = j["dim"].as_int64(), c.depth = j["depth"].as_int64(), c.heads = j["heads"].as_int64();
  c.mlp_ratio = j["mlp_ratio"].as_double(), c.drop_path = j["drop_path"].as_double();
  if (j.contains("norm_eps")) c.norm_eps = j["norm_eps"].as_double();  // absent in configs written before them
  if (j.contains("head_norm_eps")) c.head_norm_eps = j["head_norm_eps"].as_double();
  c.pos_kind = j["pos_kind"].as_string();
  c.pos_encoding = j["pos_encoding"].as_bool(), c.length_encoding = j["length_encoding"].as_bool();
  c.attention_kernel = j["attention_kernel"].as_string();
  if (j.contains("attention")) c.attention = j["attention"].as_string();  // absent in configs written before it
  if (j.contains("embed_init")) c.embed_init = j["embed_init"].as_string();
  if (j.contains("attention_options")) {
    for (const auto& [name, value] : j["attention_options"].as_object()) c.attention_options[name] = value.as_double();
  }
  c.validate();
  return c;
}

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {  // 16 frames of 32 x 32, tubelets 2 x 8 x 8: a 8 x 4 x 4 grid, 128 tokens per clip
    c.frames = 16, c.image_size = 32, c.tubelet = 2, c.patch = 8, c.classes = 8;
    c.dim = 64, c.depth = 3, c.heads = 4;
  } else if (name == "small") {  // the CPU benchmark's model: 16 frames of 112 x 112, 392 tokens per clip
    c.frames = 16, c.image_size = 112, c.tubelet = 2, c.patch = 16, c.classes = 10;
    c.dim = 192, c.depth = 4, c.heads = 3;
  } else if (name == "base") {  // ViT-B/16 on 16 x 224 x 224 clips, as in the paper (1568 tokens per clip)
    c.frames = 16, c.image_size = 224, c.tubelet = 2, c.patch = 16, c.classes = 400;
    c.dim = 768, c.depth = 12, c.heads = 12, c.drop_path = 0.1;
  } else {
    throw std::invalid_argument("unknown model preset '" + name + "' (choose tiny, small or base)");
  }
  return c;
}

std::vector<std::string> model_preset_names() { return {"tiny", "small", "base"}; }

RLTransformer::RLTransformer(const ModelConfig& c) : config(c) {
  c.validate();
  const nn::Grid g = c.grid();
  patch_embed = register_module("patch_embed", std::make_shared<TubeletEmbedding>(c.channels, c.tubelet, c.patch, c.dim));
  if (c.embed_init == "central") patch_embed->init_central_frame();
  pos_table = register_buffer("pos_table", c.pos_kind == "1d"   ? sinusoid_table(g.size(), c.dim)
                                           : c.pos_kind == "3d" ? sinusoid_table_3d(g, c.dim)
                                                                : ops::zeros({g.size(), c.dim}));
  if (c.length_encoding) length_embed = register_module("length_embed", std::make_shared<LengthEncoding>(g.t, c.dim));
  auto block_list = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.depth; ++i) {
    nn::BlockConfig bc;
    bc.dim = c.dim;
    bc.heads = c.heads;
    bc.mlp_ratio = c.mlp_ratio;
    bc.norm_eps = c.norm_eps;
    bc.drop_path = c.depth > 1 ? c.drop_path * double(i) / double(c.depth - 1) : c.drop_path;
    bc.attention_kernel = c.attention_kernel;
    bc.attention = c.attention;
    bc.attention_options = c.attention_options;
    bc.grid = g;
    blocks.push_back(block_list->push_back(std::make_shared<nn::TransformerBlock>(bc)));
  }
  if (c.attention == "factorised_encoder") {
    nn::AttentionConfig ac;
    ac.dim = c.dim, ac.heads = c.heads, ac.kernel = c.attention_kernel, ac.grid = g, ac.options = c.attention_options;
    temporal = register_module(
        "temporal", std::make_shared<nn::TemporalEncoder>(ac, nn::factorised_encoder_temporal_depth(ac), c.mlp_ratio));
  }
  if (c.classes > 0) {
    fc_norm = register_module("fc_norm", std::make_shared<nn::LayerNorm>(c.dim, c.head_norm_eps));
    head = register_module("head", std::make_shared<nn::Linear>(c.dim, c.classes));
  }
  // ViT's init for the transformer's Linear layers: trunc_normal(0.02) weights, zero biases.
  for (auto& [name, t] : named_parameters()) {
    if (name.rfind("blocks.", 0) != 0 && name.rfind("head.", 0) != 0 && name.rfind("temporal.", 0) != 0) continue;
    if (name.find("norm") != std::string::npos) continue;
    if (t.dim() == 2) nn::init::trunc_normal_(t, 0.02);
    if (t.dim() == 1) nn::init::zeros_(t);
  }
  for (auto& block : blocks) block->attn->reset_special_parameters();  // e.g. TimeSformer's zero temporal_fc
}

Tensor mean_per_clip(const Tensor& x, const nn::TokenLayout& layout) {
  const int64_t B = layout.batch_size(), N = layout.total_tokens();
  if (x.dim() != 2 || x.size(0) != N) {
    throw std::invalid_argument("mean_per_clip: expected x [" + std::to_string(N) + ", D], got " + shape_str(x.shape()));
  }
  for (int64_t b = 0; b < B; ++b) {
    if (layout.clip_tokens(b) == 0) throw std::invalid_argument("mean_per_clip: clip " + std::to_string(b) + " has no tokens");
  }
  // The averaging matrix A [B, N], A[b, i] = 1/n_b for the tokens of clip b (cu[b] <= i < cu[b+1]), so A x is
  // the per-clip mean. It is built where x lives, from cu_seqlens (the copy the attention layers already
  // uploaded) and a device arange: no upload at the end of the forward pass, when the GPU's queue is full.
  const Device device = x.device();
  const Tensor cu = layout.cu_seqlens_on(device);                           // int32 [B + 1]
  const Tensor begin = ops::unsqueeze(ops::narrow(cu, 0, 0, B), 1);       // [B, 1]
  const Tensor end = ops::unsqueeze(ops::narrow(cu, 0, 1, B), 1);         // [B, 1]
  const Tensor token = ops::unsqueeze(ops::arange(0, double(N), 1, DType::Int32, device), 0);  // [1, N]
  const DType dt = x.dtype();
  const Tensor in_clip = ops::to_dtype(token >= begin, dt) * ops::to_dtype(token < end, dt);  // [B, N] 0/1
  const Tensor a = in_clip / ops::to_dtype(end - begin, dt);                                    // [B, N]
  return matmul(a, x);
}

Tensor RLTransformer::features(const Tensor& tubelets, const nn::TokenLayout& layout,
                               nn::TokenLayout* out_layout) const {
  if (tubelets.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("RLTransformer: " + std::to_string(tubelets.size(0)) + " tubelets for a layout of " +
                                std::to_string(layout.total_tokens()) + " tokens");
  }
  const nn::Grid g = config.grid();
  if (layout.grid() != g) {
    throw std::invalid_argument("RLTransformer: the batch's token grid " + nn::to_string(layout.grid()) +
                                " does not match the model's " + nn::to_string(g));
  }
  Tensor x = patch_embed->forward(tubelets);                                          // [N, D]
  if (config.pos_encoding) x = x + to_dtype(positional_encoding(pos_table, layout), x.dtype());
  if (length_embed) x = x + length_embed->forward(layout);
  nn::TokenLayout current = layout;
  for (const auto& block : blocks) {
    x = block->forward(x, current);
    current = block->output_layout(current);  // changes only in a block that downsamples
  }
  if (temporal) x = temporal->forward(x, current, &current);  // frame tokens, one per non-empty frame
  if (out_layout) *out_layout = current;
  return x;
}

Tensor RLTransformer::forward(const Tensor& tubelets, const nn::TokenLayout& layout) const {
  if (!head) {
    throw std::invalid_argument("RLTransformer: this model has no head (classes = 0): fine-tune it with a new head "
                                "first (glance train --init-from)");
  }
  nn::TokenLayout final_layout;
  Tensor x = features(tubelets, layout, &final_layout);
  Tensor pooled = mean_per_clip(x, final_layout);  // [B, D]
  return head->forward(fc_norm->forward(pooled));                     // [B, classes]
}

}  // namespace glance::rlt
