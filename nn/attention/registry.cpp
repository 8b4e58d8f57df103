#include "nn/attention/registry.h"

#include <mutex>
#include <stdexcept>

#include "nn/attention/deformable.h"
#include "nn/attention/factorised_encoder.h"
#include "nn/attention/multi_head.h"
#include "nn/attention/pooling.h"

namespace glance::nn {

namespace {

// The designs glance ships, one line each (the factory lives in the design's own file).
std::vector<AttentionVariant> builtin_variants() {
  return {
      {"joint", "joint space-time attention: every token attends to every token of its clip",
       "ViT; TimeSformer 'joint_space_time'", "nn/attention/multi_head.cpp", make_joint_attention},
      {"space_only", "spatial attention only: tokens attend within their frame (no temporal mixing)",
       "TimeSformer 'space_only'", "nn/attention/multi_head.cpp", make_space_only_attention},
      {"factorised_encoder", "ViViT model 2: a spatial encoder within each frame, then a temporal encoder over frame tokens",
       "ViViT (scenic SpaceTimeViViT)", "nn/attention/factorised_encoder.cpp", make_factorised_encoder_attention, true},
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
