// The registry of attention designs: name -> factory, listed by `glance variants` and chosen with
// `glance train --attention NAME`.
//
// Adding a design is one file plus one line in builtin_variants() (nn/attention/registry.cpp);
// docs/11-write-your-own-attention.md walks through it.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/attention/layer.h"

namespace glance::nn {

struct AttentionVariant {
  std::string name;     // the CLI name, e.g. "divided"
  std::string summary;  // one line: what it computes
  std::string source;   // the paper or code it follows
  std::string file;     // where it lives in glance
  std::function<std::shared_ptr<AttentionLayer>(const AttentionConfig&)> make;
  // Most designs replace the attention inside every block. A few change the model around the blocks
  // (ViViT's factorised encoder: a spatial encoder per frame, then a temporal encoder); the model asks
  // for those by name and `make` gives the attention of its blocks.
  bool changes_model = false;
};

void register_attention_variant(AttentionVariant variant);  // throws if the name is taken
AttentionVariant attention_variant(const std::string& name);  // throws listing the known names
std::vector<AttentionVariant> attention_variants();          // in registration order
std::shared_ptr<AttentionLayer> make_attention(const std::string& name, const AttentionConfig& config);

}  // namespace glance::nn
