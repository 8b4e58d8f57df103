#include "nn/attention/registry.h"

#include <mutex>
#include <stdexcept>

#include "nn/attention/dilated.h"
#include "nn/attention/multi_head.h"
#include "nn/attention/nystrom.h"

namespace glance::nn {

namespace {

// The designs glance ships, one line each (the factory lives in the design's own file).
std::vector<AttentionVariant> builtin_variants() {
  return {
      {"joint", "joint space-time attention: every token attends to every token of its clip",
       "ViT; TimeSformer 'joint_space_time'", "nn/attention/multi_head.cpp", make_joint_attention},
      {"space_only", "spatial attention only: tokens attend within their frame (no temporal mixing)",
       "TimeSformer 'space_only'", "nn/attention/multi_head.cpp", make_space_only_attention},
      {"nystrom", "Nystrom attention: softmax approximated through m segment-mean landmarks, plus a depthwise conv skip",
       "Nystromformer (Xiong et al. 2021), mlpen/Nystromformer", "nn/attention/nystrom.cpp", make_nystrom_attention},
      {"dilated", "dilated attention: branches of segments with every r-th token, mixed by their softmax denominators",
       "LongNet (Ding et al. 2023), torchscale dilated_attention.py", "nn/attention/dilated.cpp", make_dilated_attention},
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
