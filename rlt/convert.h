// Checkpoints of other libraries in and out of glance: the layouts of the video transformers people train and
// publish, mapped onto glance's RLT transformer (rlt/model.h), which has the same parts under other names.
//
//   layout        where its files come from                               what it holds
//   glance        glance train --save, glance convert                      glance's names + glance.config metadata
//                 (an earlier version's patch_embed.{weight,bias} renamed)
//   hf-videomae   transformers' VideoMAEForVideoClassification and          videomae.embeddings.patch_embeddings.projection,
//                 VideoMAEModel (save_pretrained: a folder with              videomae.encoder.layer.N.attention.attention.
//                 config.json and model.safetensors)                         {query,key,value}, q_bias/v_bias (or query.bias),
//                                                                            layernorm_before/after, fc_norm, classifier
//   videomae-v2   the original VideoMAE / VideoMAE-v2 code's checkpoints     patch_embed.proj, blocks.N.attn.qkv + q_bias and
//                 (.pth, turned into safetensors by                          v_bias, blocks.N.norm1/norm2/mlp.fc1/fc2,
//                 scripts/pth_to_safetensors.py)                             fc_norm, head (an "encoder." prefix in pre-training)
//   timm-vit      timm's VisionTransformer (an image model: its 2-D          patch_embed.proj [D, 3, p, p], pos_embed, cls_token,
//                 patch kernel is inflated over the tubelet's frames)        blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.*},
//                                                                            norm or fc_norm, head
//
// What differs and how it is mapped:
//   - q, k, v: transformers keeps three Linear layers, VideoMAE a merged qkv weight with separate q and v biases
//     and no k bias; glance one qkv Linear [3D, D] with a bias [3D]. In: concatenated, the k bias zero. Out: split,
//     the k bias dropped. That loses nothing: q . (k + b) = q . k + q . b adds the same number to every key's score
//     of one query, which the softmax removes, so the k bias never changes the output (and gets no gradient).
//   - positions: VideoMAE's fixed 1-D sinusoid table is glance's pos_kind "1d", recomputed (not stored by
//     transformers); a timm model's learned 2-D pos_embed becomes a fixed table (pos_kind "table") repeated over
//     the time steps, its class-token row dropped.
//   - the length encoding (RLT's): none of the other layouts has one, so a converted model gets a zero table
//     (adds nothing until fine-tuning learns it); out of glance a non-zero one cannot be expressed.
//   - LayerNorm epsilons are kept in the model config (transformers' VideoMAE: 1e-12 in the blocks, 1e-5 in
//     fc_norm; timm and VideoMAE's code: 1e-6).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "rlt/model.h"
#include "tensor/tensor.h"

namespace glance::rlt {

enum class CheckpointLayout { Glance, HfVideoMAE, VideoMAEv2, TimmViT };
CheckpointLayout parse_checkpoint_layout(const std::string& name);  // "glance" | "hf-videomae" | "videomae-v2" | "timm-vit"
const char* layout_name(CheckpointLayout layout);

// What a layout's files hold, read as they are: the tensors, the safetensors metadata, and the config.json
// beside them (empty when there is none).
struct ForeignCheckpoint {
  std::string path;  // what was read (the safetensors file)
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::string config_json;
};
// IN is a .safetensors file or a folder holding model.safetensors (and config.json when the library writes one).
// Throws naming the path and what is missing.
ForeignCheckpoint read_foreign_checkpoint(const std::string& in);

// The layout of a set of tensor names, and a sentence saying what was found ("transformers VideoMAE classifier,
// 12 blocks, 400 classes"). Throws listing the names it looked for when no layout matches.
CheckpointLayout detect_layout(const std::map<std::string, Tensor>& tensors, std::string* found = nullptr);

// A model in glance's form: its config, class names and tensors under glance's names (the state_dict of an
// RLTransformer built from `config`, buffers included).
struct GlanceModel {
  ModelConfig config;
  std::vector<std::string> class_names;  // one per class (empty when config.classes == 0)
  std::map<std::string, Tensor> tensors;
};

struct ConvertOptions {
  // timm-vit in: how the 2-D patch kernel covers a tubelet's frames. "central": on frame tubelet / 2, zero
  // elsewhere (ViViT's central-frame init); "average": kernel / tubelet on every frame (a static clip then embeds
  // exactly like the image).
  std::string inflate = "central";
  int64_t frames = 16, tubelet = 2;  // timm-vit in: the clips the video model will see
  int64_t image_size = 224;          // videomae-v2 in (with frames): not stored in its checkpoints
  int64_t heads = 0;                 // videomae-v2, timm-vit in: when no config says (0: the standard ViT's)
  // Out of glance: what the target cannot express (a non-zero length table, a 3-D positional table, a 3-D
  // tubelet kernel for an image model) is refused, or dropped with this flag.
  bool drop_unsupported = false;
  std::vector<std::string>* notes = nullptr;  // where each lossy or noteworthy step is described, when given
};

// Any layout -> glance. The glance layout is read from its glance.config metadata.
GlanceModel to_glance(const ForeignCheckpoint& in, CheckpointLayout layout, const ConvertOptions& options = {});

// glance -> a layout: the tensors under the layout's names, and the config.json text the library reads (empty
// for videomae-v2, whose checkpoints carry none). Throws naming what the target cannot express.
struct ForeignModel {
  std::map<std::string, Tensor> tensors;
  std::string config_json;
};
ForeignModel from_glance(const GlanceModel& model, CheckpointLayout layout, const ConvertOptions& options = {});

// Writes a converted model: glance -> OUT a .safetensors checkpoint with glance.config; another layout -> OUT a
// folder with model.safetensors and config.json (videomae-v2: OUT a .safetensors file). Atomic per file.
void write_glance_model(const GlanceModel& model, const std::string& out);
void write_foreign_model(const ForeignModel& model, CheckpointLayout layout, const std::string& out);

}  // namespace glance::rlt
