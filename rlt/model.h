// The RLT video transformer (the model of "Don't Look Twice", VideoMAE-style ViT without a class token):
//
//   packed tubelets [N_total, 3*u*p*p] + TokenLayout (B clips)
//     -> patch_embed (tubelet embedding)                  [N_total, D]
//     -> + positional encoding of the run start (fixed)   (switchable)
//     -> + length encoding (learned, by run length)       (switchable)
//     -> blocks.0 .. blocks.{depth-1} (pre-LN; attention stays inside each clip)
//     -> mean over each clip's tokens                      [B, D]
//     -> fc_norm (LayerNorm) -> head                       [B, classes]
//
// Dense, RLT and random-drop batches all go through this one forward: they differ only in which tokens
// the layout holds and in their lengths.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/attention/factorised_encoder.h"
#include "nn/transformer.h"
#include "rlt/embeddings.h"

namespace glance::rlt {

// The largest sizes ModelConfig::validate accepts, far beyond any video transformer glance can train: a config
// past them is a typo or a damaged file, refused before a byte of the model is allocated (a depth of 10^6 would
// otherwise build a million blocks). The command line's options have the same bounds.
struct ModelLimits {
  static constexpr int64_t frames = 1024, image_size = 4096, classes = 1'000'000, dim = 16384, depth = 256;
  static constexpr int64_t tokens_per_clip = 1 << 20;  // the grid T' x H' x W' (ViT-B on 16 x 224^2: 1568)
  static constexpr double parameters = 4e9;            // blocks and head, estimated from the sizes
  static constexpr double mlp_ratio = 64;
};

struct ModelConfig {
  int64_t frames = 16, image_size = 64, channels = 3;
  int64_t tubelet = 2, patch = 16;
  int64_t classes = 8;  // 0: no head (an encoder converted without its classifier; fine-tune it with a new head)
  int64_t dim = 192, depth = 4, heads = 3;
  double mlp_ratio = 4.0, drop_path = 0.0;
  double norm_eps = 1e-6;       // the blocks' LayerNorms (timm and VideoMAE's code: 1e-6; transformers' VideoMAE: 1e-12)
  double head_norm_eps = 1e-6;  // fc_norm, after pooling (transformers' VideoMAE: 1e-5)
  bool pos_encoding = true;
  // "1d": VideoMAE's sinusoid table over the flat index (the paper); "3d": factorised t, h, w; "table": a fixed
  // table read from the checkpoint (an image model's learned positions, converted: rlt/convert.h)
  std::string pos_kind = "3d";
  bool length_encoding = true;
  std::string embed_init = "random";  // "central": ViViT's central-frame init of the tubelet embedding
  std::string attention_kernel = "device";  // the softmax kernel (nn/attention/kernel.h): "device", "reference", "tiled"...
  std::string attention = "joint";             // the attention design (`glance variants` lists them)
  std::map<std::string, double> attention_options;  // the design's knobs (its file lists them)

  nn::Grid grid() const { return {frames / tubelet, image_size / patch, image_size / patch}; }
  void validate() const;  // throws naming the field
  // A lower bound of the model's weights, from the sizes alone: per block q, k, v and the output projection
  // (4 D^2) and the MLP's two matrices (2 D x hidden), plus the head (classes x D). Every attention design has at
  // least these (biases, norms and embeddings come on top), so a checkpoint holding fewer numbers than this
  // cannot be the model its config describes (rlt/run_config.cpp refuses it before anything is built).
  double minimum_parameters() const;
  std::string to_json() const;
  static ModelConfig from_json(const std::string& text);  // throws naming a missing or bad field
};

// Named presets: "tiny" (the demo and the tests), "small" (the CPU benchmark's shape), "base" (ViT-B).
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

class RLTransformer : public nn::Module {
 public:
  explicit RLTransformer(const ModelConfig& config);
  Tensor forward(const Tensor& tubelets, const nn::TokenLayout& layout) const;  // -> logits [B, classes]
  // Everything before the head's pooling, for tests: [N_out, D] after the blocks. N_out = N_total unless
  // a block downsamples; `out_layout`, when given, receives the layout of the returned rows.
  Tensor features(const Tensor& tubelets, const nn::TokenLayout& layout, nn::TokenLayout* out_layout = nullptr) const;

  ModelConfig config;
  std::shared_ptr<TubeletEmbedding> patch_embed;
  std::shared_ptr<LengthEncoding> length_embed;  // null when length encoding is off
  Tensor pos_table;                               // buffer [T'H'W', D]
  std::vector<std::shared_ptr<nn::TransformerBlock>> blocks;
  std::shared_ptr<nn::TemporalEncoder> temporal;  // only for attention "factorised_encoder" (ViViT model 2)
  std::shared_ptr<nn::LayerNorm> fc_norm;  // null, like head, when config.classes == 0
  std::shared_ptr<nn::Linear> head;
};

// The mean of each clip's rows: x [N_total, D] -> [B, D] (differentiable; a [B, N_total] averaging matrix).
Tensor mean_per_clip(const Tensor& x, const nn::TokenLayout& layout);

}  // namespace glance::rlt
