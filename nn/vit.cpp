#include "nn/vit.h"

#include <cmath>
#include <stdexcept>

#include "nn/init.h"

namespace glance::nn {

Tensor patchify(const Tensor& images, int64_t p) {
  if (images.dim() != 4 || images.size(2) % p != 0 || images.size(3) % p != 0) {
    throw std::invalid_argument("patchify: expected images [B, C, H, W] with H and W divisible by " +
                                std::to_string(p) + ", got " + shape_str(images.shape()));
  }
  int64_t B = images.size(0), C = images.size(1), gh = images.size(2) / p, gw = images.size(3) / p;
  // [B, C, gh, p, gw, p] -> [B, gh, gw, C, p, p] -> [B, gh*gw, C*p*p]
  Tensor grid = reshape(images, {B, C, gh, p, gw, p});
  return reshape(permute(grid, {0, 2, 4, 1, 3, 5}), {B, gh * gw, C * p * p});
}

PatchProjection::PatchProjection(int64_t c, int64_t p, int64_t d) {
  weight = register_parameter("weight", ops::empty({d, c, p, p}));
  bias = register_parameter("bias", ops::empty({d}));
  // PyTorch's Conv2d default: U(+-1/sqrt(fan_in)) with fan_in = C*p*p.
  double bound = 1.0 / std::sqrt(static_cast<double>(c * p * p));
  init::uniform_(weight, -bound, bound);
  init::uniform_(bias, -bound, bound);
}

Tensor PatchProjection::forward(const Tensor& patches) const {
  return linear(patches, reshape(weight, {weight.size(0), -1}), bias);
}

PatchEmbed::PatchEmbed(int64_t c, int64_t p, int64_t d) : patch(p) {
  proj = register_module("proj", std::make_shared<PatchProjection>(c, p, d));
}

Tensor PatchEmbed::forward(const Tensor& images) const { return proj->forward(patchify(images, patch)); }

VisionTransformer::VisionTransformer(const ViTConfig& c) : config(c) {
  if (c.image_size % c.patch_size != 0) {
    throw std::invalid_argument("VisionTransformer: image size " + std::to_string(c.image_size) +
                                " is not divisible by patch size " + std::to_string(c.patch_size));
  }
  int64_t patches = (c.image_size / c.patch_size) * (c.image_size / c.patch_size);
  patch_embed = register_module("patch_embed", std::make_shared<PatchEmbed>(c.channels, c.patch_size, c.dim));
  cls_token = register_parameter("cls_token", ops::zeros({1, 1, c.dim}));
  pos_embed = register_parameter("pos_embed", ops::zeros({1, patches + 1, c.dim}));
  init::trunc_normal_(pos_embed, 0.02);
  init::trunc_normal_(cls_token, 1e-6);
  auto block_list = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < c.depth; ++i) {
    BlockConfig bc;
    bc.dim = c.dim;
    bc.heads = c.heads;
    bc.mlp_ratio = c.mlp_ratio;
    bc.drop = c.drop;
    bc.drop_path = c.depth > 1 ? c.drop_path * static_cast<double>(i) / static_cast<double>(c.depth - 1) : c.drop_path;
    bc.attention_kernel = c.attention_kernel;
    blocks.push_back(block_list->push_back(std::make_shared<TransformerBlock>(bc)));
  }
  norm = register_module("norm", std::make_shared<LayerNorm>(c.dim, 1e-6));
  head = register_module("head", std::make_shared<Linear>(c.dim, c.classes));
  // timm's init: trunc_normal(0.02) for every Linear weight, zero biases.
  for (auto& [name, t] : named_parameters()) {
    bool is_linear_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 && t.dim() == 2 &&
                            name.find("norm") == std::string::npos;
    if (is_linear_weight) init::trunc_normal_(t, 0.02);
    if (name.find("norm") == std::string::npos && name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      init::zeros_(t);
    }
  }
}

Tensor VisionTransformer::forward(const Tensor& images) const {
  int64_t B = images.size(0);
  Tensor tokens = patch_embed->forward(images);                        // [B, P, D]
  Tensor cls = expand(cls_token, {B, 1, config.dim});                  // [B, 1, D]
  Tensor x = concat({cls, tokens}, 1) + pos_embed;                     // [B, P+1, D]
  int64_t n = x.size(1);
  TokenLayout layout = TokenLayout::from_counts(std::vector<int64_t>(B, n));
  x = reshape(x, {B * n, config.dim});                                 // packed: image after image
  for (const auto& block : blocks) x = block->forward(x, layout);
  x = norm->forward(x);
  Tensor cls_rows = ops::arange(0, static_cast<double>(B * n), static_cast<double>(n));  // row of each cls token
  return head->forward(index_select(x, 0, cls_rows));                  // [B, classes]
}

}  // namespace glance::nn
