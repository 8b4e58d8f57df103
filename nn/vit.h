// A small Vision Transformer for images: the first complete model built from the layers.
//
//   image [B, C, H, W] -> patches [B, P, C*p*p] -> patch_embed.proj -> [B, P, D]
//   prepend cls_token, add pos_embed -> [B, P+1, D] -> packed [B*(P+1), D] with a dense TokenLayout
//   blocks -> norm -> the cls token of each image -> head -> logits [B, classes]
//
// Parameter names and shapes follow timm's VisionTransformer (patch_embed.proj.weight is [D, C, p, p],
// a conv kernel applied with stride p, which is the same as a linear map of each flattened patch).
#pragma once
#include <memory>
#include <vector>

#include "nn/transformer.h"

namespace glance::nn {

struct ViTConfig {
  int64_t image_size = 32, patch_size = 4, channels = 3, classes = 10;
  int64_t dim = 64, depth = 4, heads = 4;
  double mlp_ratio = 4.0, drop = 0.0, drop_path = 0.0;
  std::string attention_kernel = "device";  // nn/attention/kernel.h: the device's own kernel
};

// [B, C, H, W] -> [B, (H/p)*(W/p), C*p*p], patches in row-major order, each flattened as (c, y, x).
Tensor patchify(const Tensor& images, int64_t patch);

// A conv with kernel = stride = p, stored as a conv ([D, C, p, p] weight, [D] bias) and applied as the
// linear map it is: each flattened patch times weight viewed [D, C*p*p].
class PatchProjection : public Module {
 public:
  PatchProjection(int64_t channels, int64_t patch, int64_t dim);
  Tensor forward(const Tensor& patches) const;  // [B, P, C*p*p] -> [B, P, D]
  Tensor weight, bias;
};

class PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t channels, int64_t patch, int64_t dim);
  Tensor forward(const Tensor& images) const;  // [B, C, H, W] -> [B, P, D]
  int64_t patch;
  std::shared_ptr<PatchProjection> proj;
};

class VisionTransformer : public Module {
 public:
  explicit VisionTransformer(const ViTConfig& config);
  Tensor forward(const Tensor& images) const;  // -> logits [B, classes]
  ViTConfig config;
  std::shared_ptr<PatchEmbed> patch_embed;
  Tensor cls_token, pos_embed;  // [1, 1, D], [1, P+1, D]
  std::vector<std::shared_ptr<TransformerBlock>> blocks;  // registered under "blocks" as a ModuleList
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
};

}  // namespace glance::nn
