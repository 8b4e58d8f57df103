#include "rlt/convert.h"

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "nn/json.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/trainer.h"
#include "tensor/backend.h"
#include "tensor/ops.h"
#include "tensor/regular_file.h"

namespace glance::rlt {

namespace fs = std::filesystem;
using nn::Json;
using TensorMap = std::map<std::string, Tensor>;

CheckpointLayout parse_checkpoint_layout(const std::string& name) {
  if (name == "glance") return CheckpointLayout::Glance;
  if (name == "hf-videomae") return CheckpointLayout::HfVideoMAE;
  if (name == "videomae-v2") return CheckpointLayout::VideoMAEv2;
  if (name == "timm-vit") return CheckpointLayout::TimmViT;
  throw std::invalid_argument("unknown checkpoint layout '" + name + "' (choose glance, hf-videomae, videomae-v2 or timm-vit)");
}

const char* layout_name(CheckpointLayout layout) {
  switch (layout) {
    case CheckpointLayout::Glance: return "glance";
    case CheckpointLayout::HfVideoMAE: return "hf-videomae";
    case CheckpointLayout::VideoMAEv2: return "videomae-v2";
    case CheckpointLayout::TimmViT: return "timm-vit";
  }
  return "?";
}

namespace {

[[noreturn]] void refuse(const std::string& what) { throw std::invalid_argument(what); }

void note(const ConvertOptions& o, const std::string& text) {
  if (o.notes) o.notes->push_back(text);
}

bool has(const TensorMap& t, const std::string& name) { return t.count(name) > 0; }

// The number of blocks: the first N for which `prefix N suffix` is missing.
int64_t count_blocks(const TensorMap& t, const std::string& prefix, const std::string& suffix) {
  int64_t n = 0;
  while (has(t, prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

std::string shape_of(const Tensor& t) { return shape_str(t.shape()); }

std::string num(double v) {  // 1e-06, 0.5: the shortest form that reads back the same
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Takes tensors out of a foreign checkpoint by name, remembering which were used, so that what is left over
// (a part the mapping does not know) is an error instead of being dropped without a word.
class Source {
 public:
  Source(const TensorMap& tensors, std::string path) : tensors_(tensors), path_(std::move(path)) {}
  const Tensor& take(const std::string& name) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) refuse(path_ + ": no tensor '" + name + "'");
    used_.insert(name);
    if (it->second.dtype() != DType::Float32) {
      refuse(path_ + ": tensor '" + name + "' is " + dtype_name(it->second.dtype()) +
             "; glance converts float32 checkpoints (scripts/pth_to_safetensors.py --float32 widens others)");
    }
    return it->second;
  }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  void ignore_prefix(const std::string& prefix, const ConvertOptions& o, const std::string& why) {
    int64_t n = 0;
    for (const auto& [name, _] : tensors_) {
      if (name.rfind(prefix, 0) == 0 && used_.insert(name).second) ++n;
    }
    if (n > 0) note(o, std::to_string(n) + " tensors under '" + prefix + "' left out: " + why);
  }
  void check_all_used() const {
    std::string left;
    int64_t n = 0;
    for (const auto& [name, _] : tensors_) {
      if (used_.count(name)) continue;
      if (n++ < 8) left += (left.empty() ? "" : ", ") + name;
    }
    if (n > 0) refuse(path_ + ": " + std::to_string(n) + " tensors this layout does not have: " + left + (n > 8 ? ", ..." : ""));
  }

 private:
  const TensorMap& tensors_;
  std::string path_;
  std::set<std::string> used_;
};

// Fills an RLTransformer's fresh state dict from `values` (glance names). Every parameter must be given, with its
// shape; the buffers (pos_table) keep what the model computed unless given; the length table, which no other
// layout has, is zero unless given.
TensorMap fill_glance_state(const ModelConfig& config, const TensorMap& values, const std::string& path,
                            const std::string& ignored_prefix = "") {
  RLTransformer model(config);
  TensorMap state = model.state_dict();
  for (auto& [name, t] : state) {
    auto it = values.find(name);
    if (it == values.end()) {
      if (name == "length_embed.weight") t = ops::zeros(t.shape());
      else if (name == "pos_table") t = ops::clone(t);
      else refuse(path + ": nothing maps to glance's '" + name + "' " + shape_of(t));
      continue;
    }
    if (it->second.shape() != t.shape()) {
      refuse(path + ": '" + name + "' would be " + shape_of(it->second) + ", the model's is " + shape_of(t));
    }
    t = ops::clone(it->second);
  }
  for (const auto& [name, _] : values) {
    if (!ignored_prefix.empty() && name.rfind(ignored_prefix, 0) == 0) continue;
    if (!state.count(name)) refuse(path + ": glance's model has no '" + name + "'");
  }
  return state;
}

std::vector<std::string> default_class_names(int64_t classes) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < classes; ++i) names.push_back("class_" + std::to_string(i));
  return names;
}

// config.json's id2label as class names in index order (or class_i where it has none).
std::vector<std::string> class_names_from(const Json& config, int64_t classes) {
  std::vector<std::string> names = default_class_names(classes);
  if (!config.is_object() || !config.contains("id2label")) return names;
  for (const auto& [key, value] : config["id2label"].as_object()) {
    size_t used = 0;
    int64_t index = -1;
    try {
      index = std::stoll(key, &used);
    } catch (const std::exception&) {
    }
    if (used == key.size() && index >= 0 && index < classes && value.is_string()) names[size_t(index)] = value.as_string();
  }
  return names;
}

int64_t int_field(const Json& j, const std::string& key, const std::string& path) {
  if (!j.contains(key)) refuse(path + ": config.json has no \"" + key + "\"");
  const Json& v = j[key];
  if (v.is_array() && v.size() > 0) {  // image_size / patch_size may be [h, w]
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i].as_int64() != v[0].as_int64()) refuse(path + ": config.json's " + key + " " + v.dump() + " is not square");
    }
    return v[0].as_int64();
  }
  if (!v.is_int()) refuse(path + ": config.json's \"" + key + "\" is not an integer: " + v.dump());
  return v.as_int64();
}

// ---- transformers' VideoMAE and VideoMAE's own code: one block mapping ---------------------------------------------
struct BlockNames {  // where one block's parts live in a layout
  std::string norm1, norm2, proj, fc1, fc2;
  std::string q_weight, k_weight, v_weight, qkv_weight;  // separate (transformers) or merged (VideoMAE's code)
  std::string q_bias, v_bias, q_bias_alt, v_bias_alt;    // transformers writes q_bias, reads query.bias too
};

BlockNames hf_block(const std::string& prefix, int64_t i) {
  const std::string b = prefix + "encoder.layer." + std::to_string(i) + ".";
  BlockNames n;
  n.norm1 = b + "layernorm_before", n.norm2 = b + "layernorm_after";
  n.proj = b + "attention.output.dense", n.fc1 = b + "intermediate.dense", n.fc2 = b + "output.dense";
  n.q_weight = b + "attention.attention.query.weight", n.k_weight = b + "attention.attention.key.weight";
  n.v_weight = b + "attention.attention.value.weight";
  n.q_bias = b + "attention.attention.q_bias", n.v_bias = b + "attention.attention.v_bias";
  n.q_bias_alt = b + "attention.attention.query.bias", n.v_bias_alt = b + "attention.attention.value.bias";
  return n;
}

BlockNames v2_block(const std::string& prefix, int64_t i) {
  const std::string b = prefix + "blocks." + std::to_string(i) + ".";
  BlockNames n;
  n.norm1 = b + "norm1", n.norm2 = b + "norm2", n.proj = b + "attn.proj", n.fc1 = b + "mlp.fc1", n.fc2 = b + "mlp.fc2";
  n.qkv_weight = b + "attn.qkv.weight", n.q_bias = b + "attn.q_bias", n.v_bias = b + "attn.v_bias";
  return n;
}

double max_abs(const Tensor& t) { return t.numel() ? ops::max(ops::unary(UnaryOp::Abs, t)).item() : 0.0; }

// One block of a VideoMAE-family checkpoint into glance's names (blocks.i.*), q/k/v merged, the k bias zero.
void take_block(Source& src, const BlockNames& n, int64_t i, int64_t dim, TensorMap& out) {
  const std::string g = "blocks." + std::to_string(i) + ".";
  auto pair = [&](const std::string& from, const std::string& to) {
    out[to + ".weight"] = src.take(from + ".weight");
    out[to + ".bias"] = src.take(from + ".bias");
  };
  pair(n.norm1, g + "norm1"), pair(n.norm2, g + "norm2"), pair(n.proj, g + "attn.proj");
  pair(n.fc1, g + "mlp.fc1"), pair(n.fc2, g + "mlp.fc2");
  out[g + "attn.qkv.weight"] = n.qkv_weight.empty()
                                   ? ops::concat({src.take(n.q_weight), src.take(n.k_weight), src.take(n.v_weight)}, 0)
                                   : src.take(n.qkv_weight);
  auto bias = [&](const std::string& name, const std::string& alt) {
    if (src.has(name)) return src.take(name);
    if (!alt.empty() && src.has(alt)) return src.take(alt);
    return ops::zeros({dim});  // qv_bias = False: no biases at all
  };
  out[g + "attn.qkv.bias"] = ops::concat({bias(n.q_bias, n.q_bias_alt), ops::zeros({dim}), bias(n.v_bias, n.v_bias_alt)}, 0);
}

// glance's block i back into a VideoMAE-family layout; the k bias is dropped (it never changes the output).
void give_block(const TensorMap& g_state, const BlockNames& n, int64_t i, int64_t dim, TensorMap& out,
                const ConvertOptions& o) {
  const std::string g = "blocks." + std::to_string(i) + ".";
  auto pair = [&](const std::string& from, const std::string& to) {
    out[to + ".weight"] = g_state.at(from + ".weight");
    out[to + ".bias"] = g_state.at(from + ".bias");
  };
  pair(g + "norm1", n.norm1), pair(g + "norm2", n.norm2), pair(g + "attn.proj", n.proj);
  pair(g + "mlp.fc1", n.fc1), pair(g + "mlp.fc2", n.fc2);
  const Tensor& w = g_state.at(g + "attn.qkv.weight");
  const Tensor& b = g_state.at(g + "attn.qkv.bias");
  if (n.qkv_weight.empty()) {
    out[n.q_weight] = ops::narrow(w, 0, 0, dim);
    out[n.k_weight] = ops::narrow(w, 0, dim, dim);
    out[n.v_weight] = ops::narrow(w, 0, 2 * dim, dim);
  } else {
    out[n.qkv_weight] = w;
  }
  out[n.q_bias] = ops::narrow(b, 0, 0, dim);
  out[n.v_bias] = ops::narrow(b, 0, 2 * dim, dim);
  const double k_bias = max_abs(ops::narrow(b, 0, dim, dim));
  if (k_bias > 0) {
    note(o, "block " + std::to_string(i) + ": the k bias is dropped (largest |b_k| " + num(k_bias) +
                "): it adds the same amount to every score of a query, which the softmax removes");
  }
}

GlanceModel hf_videomae_to_glance(const ForeignCheckpoint& in, const ConvertOptions& o) {
  if (in.config_json.empty()) refuse(in.path + ": a transformers checkpoint needs its config.json beside it");
  const Json c = Json::parse(in.config_json);
  const std::string prefix = has(in.tensors, "videomae.embeddings.patch_embeddings.projection.weight") ? "videomae." : "";
  if (c.contains("use_mean_pooling") && !c["use_mean_pooling"].as_bool()) {
    refuse(in.path + ": use_mean_pooling is false (the model classifies its first token); glance averages the tokens");
  }
  if (c.contains("hidden_act") && c["hidden_act"].as_string() != "gelu") {
    refuse(in.path + ": hidden_act '" + c["hidden_act"].as_string() + "' (glance's MLP uses the exact GELU, 'gelu')");
  }
  if (int_field(c, "num_channels", in.path) != 3) refuse(in.path + ": num_channels must be 3");
  ModelConfig m;
  m.frames = int_field(c, "num_frames", in.path), m.image_size = int_field(c, "image_size", in.path);
  m.tubelet = int_field(c, "tubelet_size", in.path), m.patch = int_field(c, "patch_size", in.path);
  m.dim = int_field(c, "hidden_size", in.path), m.depth = int_field(c, "num_hidden_layers", in.path);
  m.heads = int_field(c, "num_attention_heads", in.path);
  m.mlp_ratio = double(int_field(c, "intermediate_size", in.path)) / double(m.dim);
  m.norm_eps = c.contains("layer_norm_eps") ? c["layer_norm_eps"].as_double() : 1e-12;
  m.head_norm_eps = 1e-5;  // VideoMAEForVideoClassification's fc_norm is a default nn.LayerNorm
  m.pos_kind = "1d", m.length_encoding = true, m.drop_path = 0.0;
  const std::string head = "classifier.weight";
  m.classes = has(in.tensors, head) ? in.tensors.at(head).size(0) : 0;

  Source src(in.tensors, in.path);
  TensorMap g;
  const std::string pe = prefix + "embeddings.patch_embeddings.projection";
  g["patch_embed.proj.weight"] = src.take(pe + ".weight");
  g["patch_embed.proj.bias"] = src.take(pe + ".bias");
  for (int64_t i = 0; i < m.depth; ++i) take_block(src, hf_block(prefix, i), i, m.dim, g);
  if (m.classes > 0) {
    g["fc_norm.weight"] = src.take("fc_norm.weight"), g["fc_norm.bias"] = src.take("fc_norm.bias");
    g["head.weight"] = src.take("classifier.weight"), g["head.bias"] = src.take("classifier.bias");
  }
  src.check_all_used();
  m.validate();
  note(o, "positions: VideoMAE's fixed 1-D sinusoid table (pos_kind 1d), recomputed; length table: zero");
  return {m, class_names_from(c, m.classes), fill_glance_state(m, g, in.path)};
}

// The standard ViT widths and their heads (ViT-S, B, L, H); anything else needs --heads.
int64_t heads_for_width(int64_t dim, int64_t given, const std::string& path, const ConvertOptions& o) {
  if (given > 0) return given;
  const std::map<int64_t, int64_t> standard = {{192, 3}, {384, 6}, {768, 12}, {1024, 16}, {1280, 16}};
  auto it = standard.find(dim);
  if (it == standard.end()) {
    refuse(path + ": the number of heads cannot be read from the tensors of a width-" + std::to_string(dim) +
           " model; give it (--heads)");
  }
  note(o, "heads = " + std::to_string(it->second) + ", the standard ViT's for width " + std::to_string(dim) +
              " (--heads to say otherwise)");
  return it->second;
}

GlanceModel videomae_v2_to_glance(const ForeignCheckpoint& in, const ConvertOptions& o) {
  const std::string prefix = has(in.tensors, "encoder.patch_embed.proj.weight") ? "encoder." : "";
  Source src(in.tensors, in.path);
  const Tensor& kernel = src.take(prefix + "patch_embed.proj.weight");  // [D, 3, u, p, p]
  if (kernel.dim() != 5 || kernel.size(1) != 3 || kernel.size(3) != kernel.size(4)) {
    refuse(in.path + ": patch_embed.proj.weight " + shape_of(kernel) + " is not a [D, 3, u, p, p] tubelet kernel");
  }
  ModelConfig m;
  m.dim = kernel.size(0), m.tubelet = kernel.size(2), m.patch = kernel.size(3);
  m.depth = count_blocks(in.tensors, prefix + "blocks.", ".attn.qkv.weight");
  m.heads = heads_for_width(m.dim, o.heads, in.path, o);
  m.frames = o.frames, m.image_size = o.image_size;
  m.mlp_ratio = double(in.tensors.at(prefix + "blocks.0.mlp.fc1.weight").size(0)) / double(m.dim);
  m.norm_eps = 1e-6, m.head_norm_eps = 1e-6;  // VideoMAE's code: partial(nn.LayerNorm, eps=1e-6)
  m.pos_kind = "1d", m.length_encoding = true, m.drop_path = 0.0;
  m.classes = has(in.tensors, "head.weight") ? in.tensors.at("head.weight").size(0) : 0;
  TensorMap g;
  g["patch_embed.proj.weight"] = kernel;
  g["patch_embed.proj.bias"] = src.take(prefix + "patch_embed.proj.bias");
  for (int64_t i = 0; i < m.depth; ++i) take_block(src, v2_block(prefix, i), i, m.dim, g);
  if (m.classes > 0) {
    g["fc_norm.weight"] = src.take("fc_norm.weight"), g["fc_norm.bias"] = src.take("fc_norm.bias");
    g["head.weight"] = src.take("head.weight"), g["head.bias"] = src.take("head.bias");
  }
  if (!prefix.empty()) {  // a pre-training checkpoint: the decoder reconstructs pixels, the classifier does not need it
    src.ignore_prefix("decoder.", o, "the pre-training decoder");
    src.ignore_prefix("encoder_to_decoder.", o, "the pre-training decoder");
    src.ignore_prefix("mask_token", o, "the pre-training decoder");
    src.ignore_prefix("encoder.norm.", o, "the pre-training encoder's final norm (fine-tuning adds fc_norm)");
  }
  src.check_all_used();
  m.validate();
  note(o, "frames " + std::to_string(m.frames) + ", image size " + std::to_string(m.image_size) +
              " (not stored in these checkpoints: --frames, --image-size)");
  return {m, default_class_names(m.classes), fill_glance_state(m, g, in.path)};
}

int64_t timm_heads(const ForeignCheckpoint& in, int64_t dim, const ConvertOptions& o) {
  if (o.heads > 0) return o.heads;
  if (!in.config_json.empty()) {
    const Json c = Json::parse(in.config_json);
    if (c.contains("model_args") && c["model_args"].contains("num_heads")) return c["model_args"]["num_heads"].as_int64();
  }
  return heads_for_width(dim, 0, in.path, o);
}

GlanceModel timm_vit_to_glance(const ForeignCheckpoint& in, const ConvertOptions& o) {
  Source src(in.tensors, in.path);
  const Tensor& kernel = src.take("patch_embed.proj.weight");  // [D, 3, p, p]
  if (kernel.dim() != 4 || kernel.size(1) != 3 || kernel.size(2) != kernel.size(3)) {
    refuse(in.path + ": patch_embed.proj.weight " + shape_of(kernel) + " is not a [D, 3, p, p] patch kernel");
  }
  if (o.inflate != "central" && o.inflate != "average") refuse("--inflate '" + o.inflate + "' (choose central or average)");
  for (const auto& [name, _] : in.tensors) {
    if (name.find(".ls1.") != std::string::npos || name.find(".ls2.") != std::string::npos) {
      refuse(in.path + ": '" + name + "': LayerScale is not part of glance's block");
    }
  }
  ModelConfig m;
  m.dim = kernel.size(0), m.patch = kernel.size(2), m.tubelet = o.tubelet, m.frames = o.frames;
  m.depth = count_blocks(in.tensors, "blocks.", ".attn.qkv.weight");
  m.heads = timm_heads(in, m.dim, o);
  m.mlp_ratio = double(in.tensors.at("blocks.0.mlp.fc1.weight").size(0)) / double(m.dim);
  m.norm_eps = 1e-6, m.head_norm_eps = 1e-6;  // timm's ViT
  m.pos_kind = "table", m.length_encoding = true, m.drop_path = 0.0;
  m.classes = has(in.tensors, "head.weight") ? in.tensors.at("head.weight").size(0) : 0;

  // Positions: pos_embed [1, prefix + P, D] (prefix: the class and register tokens, when embedded with them).
  const Tensor& pos = src.take("pos_embed");
  int64_t prefix_tokens = 0;
  for (const char* token : {"cls_token", "reg_token"}) {
    if (!src.has(token)) continue;
    const Tensor& t = src.take(token);
    prefix_tokens += t.size(1);
    note(o, std::string(token) + " dropped: glance's model has no class or register tokens and averages its tokens");
  }
  // Positions for the patches only (no class token, or timm's no_embed_class), or the prefix rows first.
  auto square_side = [](int64_t n) {
    const int64_t s = static_cast<int64_t>(std::llround(std::sqrt(double(n))));
    return s * s == n ? s : int64_t(0);
  };
  const int64_t patches = square_side(pos.size(1)) ? pos.size(1) : pos.size(1) - prefix_tokens;
  const int64_t side = square_side(patches);
  if (pos.dim() != 3 || side == 0) refuse(in.path + ": pos_embed " + shape_of(pos) + " is not a square grid of patches");
  m.image_size = side * m.patch;
  m.validate();
  const int64_t steps = m.frames / m.tubelet;
  const Tensor spatial = ops::reshape(ops::narrow(pos, 1, pos.size(1) - patches, patches), {1, patches, m.dim});
  TensorMap g;
  g["pos_table"] = ops::reshape(ops::contiguous(ops::expand(spatial, {steps, patches, m.dim})), {steps * patches, m.dim});
  note(o, "positions: timm's learned table of " + std::to_string(patches) + " patches, repeated over " +
              std::to_string(steps) + " time steps (pos_kind table, fixed)");

  // The tubelet kernel [D, 3, u, p, p] from the 2-D one.
  const Tensor k5 = ops::unsqueeze(kernel, 2);  // [D, 3, 1, p, p]
  Tensor tubelet_kernel;
  if (o.inflate == "average") {
    tubelet_kernel = ops::contiguous(ops::expand(ops::binary(BinaryOp::Div, k5, double(m.tubelet)),
                                                 {m.dim, 3, m.tubelet, m.patch, m.patch}));
  } else {
    std::vector<Tensor> frames;
    for (int64_t f = 0; f < m.tubelet; ++f) frames.push_back(f == m.tubelet / 2 ? k5 : ops::zeros(k5.shape()));
    tubelet_kernel = ops::concat(frames, 2);
  }
  note(o, "patch kernel inflated over the tubelet's " + std::to_string(m.tubelet) + " frames: " + o.inflate);
  g["patch_embed.proj.weight"] = tubelet_kernel;
  g["patch_embed.proj.bias"] = src.take("patch_embed.proj.bias");
  for (int64_t i = 0; i < m.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* part : {"norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2"}) {
      g[b + part + ".weight"] = src.take(b + part + ".weight");
      g[b + part + ".bias"] = src.take(b + part + ".bias");
    }
    g[b + "attn.qkv.weight"] = src.take(b + "attn.qkv.weight");
    g[b + "attn.qkv.bias"] = src.has(b + "attn.qkv.bias") ? src.take(b + "attn.qkv.bias") : ops::zeros({3 * m.dim});
  }
  // The norm after the blocks: timm's averaging models apply fc_norm after the pooling, as glance does; a
  // class-token model's final `norm` acts on the tokens before its class token is read.
  std::string final_norm = src.has("fc_norm.weight") ? "fc_norm" : "norm";
  if (final_norm == "norm" && m.classes > 0) {
    note(o, "timm's final norm (before reading the class token) becomes fc_norm (after averaging the tokens): "
            "a different function until fine-tuned");
  }
  if (m.classes > 0) {
    g["fc_norm.weight"] = src.take(final_norm + ".weight"), g["fc_norm.bias"] = src.take(final_norm + ".bias");
    g["head.weight"] = src.take("head.weight"), g["head.bias"] = src.take("head.bias");
  } else {
    src.ignore_prefix(final_norm + ".", o, "no head to normalise for");
  }
  src.check_all_used();
  std::vector<std::string> names = default_class_names(m.classes);
  if (!in.config_json.empty()) {
    const Json c = Json::parse(in.config_json);
    if (c.contains("label_names") && int64_t(c["label_names"].size()) == m.classes) {
      for (int64_t i = 0; i < m.classes; ++i) names[size_t(i)] = c["label_names"][size_t(i)].as_string();
    }
  }
  return {m, names, fill_glance_state(m, g, in.path)};
}

GlanceModel glance_to_glance(const ForeignCheckpoint& in) {
  auto it = in.metadata.find("glance.config");
  if (it == in.metadata.end()) refuse(in.path + ": no glance.config metadata (not written by glance)");
  const RunConfig run = parse_run_config(it->second);
  // Checkpoints of earlier glance versions name the tubelet embedding patch_embed.{weight,bias}.
  TensorMap tensors = in.tensors;
  for (const char* part : {"weight", "bias"}) {
    auto legacy = tensors.find(std::string("patch_embed.") + part);
    if (legacy == tensors.end()) continue;
    tensors[std::string("patch_embed.proj.") + part] = legacy->second;
    tensors.erase(legacy);
  }
  // A training checkpoint also holds the optimizer's moments: the model is what converts.
  return {run.model, run.class_names, fill_glance_state(run.model, tensors, in.path, nn::kOptimizerPrefix)};
}

// ---- out of glance ----------------------------------------------------------------------------------------------

// The parts of a glance model that a VideoMAE-family layout cannot hold: refused, or dropped with the flag.
void check_expressible_as_videomae(const GlanceModel& g, CheckpointLayout to, const ConvertOptions& o) {
  auto lossy = [&](const std::string& what) {
    if (!o.drop_unsupported) {
      refuse(std::string(layout_name(to)) + " cannot express " + what + " (--drop-unsupported drops it)");
    }
    note(o, "dropped: " + what);
  };
  if (g.config.attention != "joint") lossy("the attention design '" + g.config.attention + "' (VideoMAE's is joint)");
  if (g.config.pos_encoding && g.config.pos_kind != "1d") {
    lossy("the positional table of kind '" + g.config.pos_kind + "' (VideoMAE's is the 1-D sinusoid table)");
  }
  if (!g.config.pos_encoding) lossy("a model without positional encoding (VideoMAE always adds its table)");
  if (g.tensors.count("length_embed.weight") && max_abs(g.tensors.at("length_embed.weight")) > 0) {
    lossy("the length encoding (RLT's learned table of run lengths)");
  }
}

Json videomae_config_json(const GlanceModel& g) {
  const ModelConfig& m = g.config;
  Json c = Json::object();
  Json arch = Json::array();
  arch.push_back(m.classes > 0 ? "VideoMAEForVideoClassification" : "VideoMAEModel");
  c.set("architectures", arch).set("model_type", "videomae");
  c.set("image_size", m.image_size).set("patch_size", m.patch).set("num_channels", m.channels);
  c.set("num_frames", m.frames).set("tubelet_size", m.tubelet);
  c.set("hidden_size", m.dim).set("num_hidden_layers", m.depth).set("num_attention_heads", m.heads);
  c.set("intermediate_size", static_cast<int64_t>(std::llround(m.dim * m.mlp_ratio)));
  c.set("hidden_act", "gelu").set("layer_norm_eps", m.norm_eps).set("qv_bias", true).set("use_mean_pooling", true);
  c.set("hidden_dropout_prob", 0.0).set("attention_probs_dropout_prob", 0.0);
  Json id2label = Json::object(), label2id = Json::object();
  for (size_t i = 0; i < g.class_names.size(); ++i) {
    id2label.set(std::to_string(i), g.class_names[i]);
    label2id.set(g.class_names[i], static_cast<int64_t>(i));
  }
  if (m.classes > 0) c.set("id2label", id2label).set("label2id", label2id);
  return c;
}

ForeignModel glance_to_videomae(const GlanceModel& g, CheckpointLayout to, const ConvertOptions& o) {
  check_expressible_as_videomae(g, to, o);
  const ModelConfig& m = g.config;
  ForeignModel out;
  const bool hf = to == CheckpointLayout::HfVideoMAE;
  const std::string prefix = hf && m.classes > 0 ? "videomae." : "";
  const std::string pe = hf ? prefix + "embeddings.patch_embeddings.projection" : "patch_embed.proj";
  out.tensors[pe + ".weight"] = g.tensors.at("patch_embed.proj.weight");
  out.tensors[pe + ".bias"] = g.tensors.at("patch_embed.proj.bias");
  for (int64_t i = 0; i < m.depth; ++i) give_block(g.tensors, hf ? hf_block(prefix, i) : v2_block("", i), i, m.dim, out.tensors, o);
  if (m.classes > 0) {
    out.tensors["fc_norm.weight"] = g.tensors.at("fc_norm.weight"), out.tensors["fc_norm.bias"] = g.tensors.at("fc_norm.bias");
    const std::string head = hf ? "classifier" : "head";
    out.tensors[head + ".weight"] = g.tensors.at("head.weight"), out.tensors[head + ".bias"] = g.tensors.at("head.bias");
  }
  if (hf) {
    if (std::abs(m.head_norm_eps - 1e-5) > 1e-12 && m.classes > 0) {
      note(o, "transformers' fc_norm uses eps 1e-5; this model's is " + num(m.head_norm_eps));
    }
    out.config_json = videomae_config_json(g).dump();
  } else if (std::abs(m.norm_eps - 1e-6) > 1e-12 || (m.classes > 0 && std::abs(m.head_norm_eps - 1e-6) > 1e-12)) {
    note(o, "VideoMAE's code uses LayerNorm eps 1e-6; this model's are " + num(m.norm_eps) + " (blocks) and " +
                num(m.head_norm_eps) + " (fc_norm)");
  }
  return out;
}

ForeignModel glance_to_timm(const GlanceModel& g, const ConvertOptions& o) {
  const ModelConfig& m = g.config;
  if (m.frames != m.tubelet) {
    refuse("timm-vit is an image model: only a glance model of one time step (frames = tubelet) converts to it; "
           "this one has " + std::to_string(m.frames / m.tubelet));
  }
  if (m.attention != "joint") refuse("timm-vit cannot express the attention design '" + m.attention + "'");
  if (g.tensors.count("length_embed.weight") && max_abs(g.tensors.at("length_embed.weight")) > 0) {
    if (!o.drop_unsupported) refuse("timm-vit cannot express the length encoding (--drop-unsupported drops it)");
    note(o, "dropped: the length encoding");
  }
  ForeignModel out;
  // A still image repeated over the tubelet's frames embeds as the sum of the kernel's frames.
  out.tensors["patch_embed.proj.weight"] = ops::sum(g.tensors.at("patch_embed.proj.weight"), {2});
  out.tensors["patch_embed.proj.bias"] = g.tensors.at("patch_embed.proj.bias");
  out.tensors["pos_embed"] = ops::unsqueeze(m.pos_encoding ? g.tensors.at("pos_table") : ops::zeros(g.tensors.at("pos_table").shape()), 0);
  for (int64_t i = 0; i < m.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* part : {"norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2", "attn.qkv"}) {
      out.tensors[b + part + ".weight"] = g.tensors.at(b + part + ".weight");
      out.tensors[b + part + ".bias"] = g.tensors.at(b + part + ".bias");
    }
  }
  if (m.classes > 0) {
    out.tensors["fc_norm.weight"] = g.tensors.at("fc_norm.weight"), out.tensors["fc_norm.bias"] = g.tensors.at("fc_norm.bias");
    out.tensors["head.weight"] = g.tensors.at("head.weight"), out.tensors["head.bias"] = g.tensors.at("head.bias");
  }
  Json args = Json::object();
  args.set("img_size", m.image_size).set("patch_size", m.patch).set("in_chans", m.channels);
  args.set("num_classes", m.classes).set("embed_dim", m.dim).set("depth", m.depth).set("num_heads", m.heads);
  args.set("mlp_ratio", m.mlp_ratio).set("qkv_bias", true).set("class_token", false).set("global_pool", "avg");
  Json labels = Json::array();
  for (const auto& n : g.class_names) labels.push_back(n);
  Json c = Json::object();
  c.set("architecture", "vit_custom").set("model_args", args).set("label_names", labels);
  out.config_json = c.dump();
  if (std::abs(m.norm_eps - 1e-6) > 1e-12) note(o, "timm's ViT uses LayerNorm eps 1e-6; this model's is " + num(m.norm_eps));
  return out;
}

}  // namespace

ForeignCheckpoint read_foreign_checkpoint(const std::string& in) {
  std::error_code ec;
  fs::path file = in, folder;
  if (fs::is_directory(in, ec)) {
    folder = in;
    file = folder / "model.safetensors";
    if (!fs::exists(file, ec)) {
      for (const char* other : {"pytorch_model.bin", "model.pth", "checkpoint.pth"}) {
        if (fs::exists(folder / other, ec)) {
          throw std::runtime_error("" + in + " holds " + other + ", a PyTorch pickle: turn it into safetensors "
                                   "first (python3 scripts/pth_to_safetensors.py " + (folder / other).string() + " " +
                                   (folder / "model.safetensors").string() + ")");
        }
      }
      throw std::runtime_error("" + in + " is a folder without model.safetensors");
    }
  } else if (!fs::exists(in, ec)) {
    throw std::runtime_error("" + in + " does not exist");
  } else {
    const std::string ext = file.extension().string();
    if (ext == ".pth" || ext == ".bin" || ext == ".pt") {
      throw std::runtime_error("" + in + " is a PyTorch pickle: turn it into safetensors first "
                               "(python3 scripts/pth_to_safetensors.py " + in + " OUT.safetensors)");
    }
    folder = file.parent_path();
  }
  const nn::SafetensorsFile f = nn::load_safetensors(file.string());
  ForeignCheckpoint out{file.string(), f.tensors, f.metadata, ""};
  const fs::path config = folder / "config.json";
  if (!folder.empty() && fs::exists(config, ec)) {
    const std::string problem = regular_file_problem(config.string());
    if (!problem.empty()) throw std::runtime_error(config.string() + " " + problem);
    std::ifstream s(config);
    out.config_json.assign(std::istreambuf_iterator<char>(s), std::istreambuf_iterator<char>());
    try {
      Json::parse(out.config_json);
    } catch (const std::exception& e) {
      throw std::runtime_error("" + config.string() + ": " + e.what());
    }
  }
  return out;
}

CheckpointLayout detect_layout(const TensorMap& t, std::string* found) {
  auto say = [&](const std::string& text) {
    if (found) *found = text;
  };
  auto blocks = [&](const std::string& prefix, const std::string& suffix) { return std::to_string(count_blocks(t, prefix, suffix)); };
  auto classes = [&](const std::string& head) {
    return has(t, head) ? std::to_string(t.at(head).size(0)) + " classes" : std::string("no head");
  };
  if (has(t, "pos_table") && (has(t, "patch_embed.proj.weight") || has(t, "patch_embed.weight"))) {
    say(std::string(has(t, "patch_embed.weight") ? "glance RLT transformer (an earlier version's names)"
                                                 : "glance RLT transformer") +
        ", " + blocks("blocks.", ".attn.qkv.weight") + " blocks, " + classes("head.weight"));
    return CheckpointLayout::Glance;
  }
  if (has(t, "videomae.embeddings.patch_embeddings.projection.weight")) {
    say("transformers VideoMAE classifier (videomae.*), " + blocks("videomae.encoder.layer.", ".layernorm_before.weight") +
        " blocks, " + classes("classifier.weight"));
    return CheckpointLayout::HfVideoMAE;
  }
  if (has(t, "embeddings.patch_embeddings.projection.weight")) {
    say("transformers VideoMAEModel (an encoder without a head), " + blocks("encoder.layer.", ".layernorm_before.weight") + " blocks");
    return CheckpointLayout::HfVideoMAE;
  }
  if (has(t, "encoder.patch_embed.proj.weight")) {
    say("VideoMAE pre-training checkpoint (encoder.* and decoder.*), " + blocks("encoder.blocks.", ".attn.qkv.weight") + " encoder blocks");
    return CheckpointLayout::VideoMAEv2;
  }
  if (has(t, "patch_embed.proj.weight") && t.at("patch_embed.proj.weight").dim() == 5) {
    say("VideoMAE / VideoMAE-v2 checkpoint (patch_embed.proj 3-D, blocks.N.attn.qkv), " + blocks("blocks.", ".attn.qkv.weight") +
        " blocks, " + classes("head.weight"));
    return CheckpointLayout::VideoMAEv2;
  }
  if (has(t, "patch_embed.proj.weight") && t.at("patch_embed.proj.weight").dim() == 4) {
    say("timm VisionTransformer (an image model: patch_embed.proj 2-D), " + blocks("blocks.", ".attn.qkv.weight") +
        " blocks, " + classes("head.weight"));
    return CheckpointLayout::TimmViT;
  }
  throw std::runtime_error(
      "no known layout: looked for videomae.embeddings.patch_embeddings.projection.weight (transformers "
      "VideoMAE), encoder.patch_embed.proj.weight or a 5-D patch_embed.proj.weight (VideoMAE's code), a 4-D "
      "patch_embed.proj.weight (timm ViT) and pos_table (glance); say --from");
}

GlanceModel to_glance(const ForeignCheckpoint& in, CheckpointLayout layout, const ConvertOptions& options) {
  switch (layout) {
    case CheckpointLayout::Glance: return glance_to_glance(in);
    case CheckpointLayout::HfVideoMAE: return hf_videomae_to_glance(in, options);
    case CheckpointLayout::VideoMAEv2: return videomae_v2_to_glance(in, options);
    case CheckpointLayout::TimmViT: return timm_vit_to_glance(in, options);
  }
  refuse("unknown layout");
}

ForeignModel from_glance(const GlanceModel& model, CheckpointLayout layout, const ConvertOptions& options) {
  switch (layout) {
    case CheckpointLayout::Glance: refuse("from_glance: the target is glance itself (write_glance_model)");
    case CheckpointLayout::HfVideoMAE:
    case CheckpointLayout::VideoMAEv2: return glance_to_videomae(model, layout, options);
    case CheckpointLayout::TimmViT: return glance_to_timm(model, options);
  }
  refuse("unknown layout");
}

void write_glance_model(const GlanceModel& model, const std::string& out) {
  TokenizerConfig tokenizer;
  tokenizer.tubelet = model.config.tubelet, tokenizer.patch = model.config.patch;
  nn::save_safetensors(out, model.tensors, {{"glance.config", run_config_json(model.config, tokenizer, model.class_names)}});
}

void write_foreign_model(const ForeignModel& model, CheckpointLayout layout, const std::string& out) {
  if (layout == CheckpointLayout::VideoMAEv2) {
    nn::save_safetensors(out, model.tensors, {{"format", "pt"}});
    return;
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw std::runtime_error("cannot create the folder " + out + ": " + ec.message());
  nn::save_safetensors((fs::path(out) / "model.safetensors").string(), model.tensors, {{"format", "pt"}});
  const std::string config = (fs::path(out) / "config.json").string(), tmp = config + ".tmp";
  {
    std::ofstream f(tmp);
    f << Json::parse(model.config_json).dump() << "\n";
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, config, ec);
  if (ec) throw std::runtime_error("cannot write " + config + ": " + ec.message());
}

}  // namespace glance::rlt
