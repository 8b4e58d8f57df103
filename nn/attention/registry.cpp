#include "nn/attention/registry.h"

#include <mutex>
#include <stdexcept>

#include "nn/attention/deformable.h"
#include "nn/attention/dilated.h"
#include "nn/attention/divided.h"
#include "nn/attention/factorised_dot_product.h"
#include "nn/attention/factorised_encoder.h"
#include "nn/attention/factorised_self_attention.h"
#include "nn/attention/local_window.h"
#include "nn/attention/multi_head.h"
#include "nn/attention/nystrom.h"
#include "nn/attention/orthoformer.h"
#include "nn/attention/pooling.h"
#include "nn/attention/trajectory.h"

namespace glance::nn {

namespace {

// The designs glance ships, one line each (the factory lives in the design's own file).
std::vector<AttentionVariant> builtin_variants() {
  return {
      {"joint", "joint space-time attention: every token attends to every token of its clip",
       "ViT; TimeSformer 'joint_space_time'", "nn/attention/multi_head.cpp", make_joint_attention},
      {"space_only", "spatial attention only: tokens attend within their frame (no temporal mixing)",
       "TimeSformer 'space_only'", "nn/attention/multi_head.cpp", make_space_only_attention},
      {"divided", "divided space-time: attention over time at each (h,w) (+ temporal_fc), then within each frame",
       "TimeSformer 'divided_space_time' (vit.py)", "nn/attention/divided.cpp", make_divided_attention},
      {"factorised_self_attention", "ViViT model 3: residual attention over time at each (h,w), then within each frame",
       "ViViT EncoderFactorizedSelfAttentionBlock (scenic)", "nn/attention/factorised_self_attention.cpp",
       make_factorised_self_attention},
      {"factorised_dot_product", "ViViT model 4: half the heads attend over time at each (h,w), half within each frame",
       "ViViT factorized_dot_product_attention (scenic)", "nn/attention/factorised_dot_product.cpp",
       make_factorised_dot_product_attention},
      {"factorised_encoder", "ViViT model 2: a spatial encoder within each frame, then a temporal encoder over frame tokens",
       "ViViT (scenic SpaceTimeViViT)", "nn/attention/factorised_encoder.cpp", make_factorised_encoder_attention, true},
      {"local", "local attention: tokens attend within a window x window spatial window, across all frames",
       "TimeSformer 'Sparse Local-Global', local part (paper)", "nn/attention/local_window.cpp",
       make_local_window_attention},
      {"trajectory", "trajectory attention: per-frame softmax gives each query a trajectory, then attention along it",
       "Motionformer TrajectoryAttention (vit_helper.py)", "nn/attention/trajectory.cpp", make_trajectory_attention},
      {"orthoformer", "trajectory attention with stage 1 routed through greedy near-orthogonal query prototypes",
       "Motionformer orthoformer_helper.py", "nn/attention/orthoformer.cpp", make_orthoformer_attention},
      {"nystrom", "Nystrom attention: softmax approximated through m segment-mean landmarks, plus a depthwise conv skip",
       "Nystromformer (Xiong et al. 2021), mlpen/Nystromformer", "nn/attention/nystrom.cpp", make_nystrom_attention},
      {"dilated", "dilated attention: branches of segments with every r-th token, mixed by their softmax denominators",
       "LongNet (Ding et al. 2023), torchscale dilated_attention.py", "nn/attention/dilated.cpp", make_dilated_attention},
      {"pooling", "MViT v2 pooling attention: q, k, v pooled by depthwise 3-D convs on the grid, residual pooling", "MViT v2 (SlowFast attention.py)", "nn/attention/pooling.cpp", make_pooling_attention},
      {"deformable", "deformable space-time attention: bilinear samples around motion-displaced points in each frame of the sub-clip", "DVT (no official code; Deformable DETR style)", "nn/attention/deformable.cpp", make_deformable_attention},
  };
}

struct Registry {
  std::mutex mutex;
  std::vector<AttentionVariant> variants = builtin_variants();
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

double AttentionConfig::option(const std::string& name, double fallback) const {
  asked_[name] = fallback;
  auto it = options.find(name);
  return it == options.end() ? fallback : it->second;
}

void AttentionConfig::check_options(const std::string& design) const {
  for (const auto& [name, value] : options) {
    if (!asked_.count(name)) {
      std::string known;
      for (const auto& [k, _] : asked_) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument("attention '" + design + "': unknown option '" + name + "' (it takes: " +
                                  (known.empty() ? "none" : known) + ")");
    }
  }
}

void register_attention_variant(AttentionVariant variant) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& v : r.variants) {
    if (v.name == variant.name) throw std::invalid_argument("register_attention_variant: '" + v.name + "' is taken");
  }
  r.variants.push_back(std::move(variant));
}

AttentionVariant attention_variant(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string known;
  for (const auto& v : r.variants) {
    if (v.name == name) return v;
    known += (known.empty() ? "" : ", ") + v.name;
  }
  throw std::invalid_argument("unknown attention '" + name + "' (known: " + known + ")");
}

std::vector<AttentionVariant> attention_variants() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.variants;
}

std::shared_ptr<AttentionLayer> make_attention(const std::string& name, const AttentionConfig& config) {
  const AttentionVariant v = attention_variant(name);
  auto layer = v.make(config);
  config.check_options(name);
  return layer;
}

}  // namespace glance::nn
