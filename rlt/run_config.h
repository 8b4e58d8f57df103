// What a checkpoint says about its run, beside the tensors: the model config, the tokenizer and the class names,
// stored as the JSON text of the safetensors metadata key "glance.config":
//
//   {"classes": ["right", "left", ...],                      one name per output of the head, all different
//    "model": {"depth": 3, "dim": 64, ...},                  ModelConfig::to_json
//    "tokenizer": {"compare": "adjacent", "patch": 8, "policy": "rlt", "tau": 0.1, "tubelet": 2}}
//
// Parsing is strict and complete, so that nothing (no model, no buffer) is built from a config that has not
// passed: every field known and of its type, the model's sizes in range (ModelConfig::validate), the tokenizer's
// tubelet equal to the model's, tau finite, and exactly `model.classes` distinct class names.
#pragma once
#include <string>
#include <vector>

#include "rlt/model.h"
#include "rlt/tokenizer.h"

namespace glance::rlt {

struct RunConfig {
  ModelConfig model;
  TokenizerConfig tokenizer;
  std::vector<std::string> class_names;
};

std::string run_config_json(const ModelConfig& model, const TokenizerConfig& tokenizer,
                            const std::vector<std::string>& class_names);
// Throws std::invalid_argument naming the first field that is missing, unknown, of the wrong type or out of range.
RunConfig parse_run_config(const std::string& json);
// The "glance.config" of a checkpoint, parsed and validated; throws naming the file.
RunConfig read_run_config(const std::string& checkpoint_path);

}  // namespace glance::rlt
