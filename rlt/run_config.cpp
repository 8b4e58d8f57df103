#include "rlt/run_config.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include "nn/json.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/strict_json.h"

namespace glance::rlt {

namespace {

// The class list names each output of the head once: predict prints class_names[c] beside probability c.
void check_class_names(const std::vector<std::string>& names, int64_t classes) {
  // Empty only for an encoder without a head (classes = 0: a converted checkpoint, rlt/convert.h).
  if (names.empty() && classes != 0) throw std::invalid_argument("the class list is empty");
  if (static_cast<int64_t>(names.size()) != classes) {
    throw std::invalid_argument("the class list has " + std::to_string(names.size()) + " class names but the model has " +
                                std::to_string(classes) + " classes (the size of its head)");
  }
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (!seen.insert(name).second) throw std::invalid_argument("class '" + name + "' is listed twice");
  }
}

void check_tokenizer(const TokenizerConfig& t, const ModelConfig& m) {
  if (t.tubelet != m.tubelet || t.patch != m.patch) {
    throw std::invalid_argument("tokenizer: tubelet " + std::to_string(t.tubelet) + ", patch " + std::to_string(t.patch) +
                                " differ from the model's tubelet " + std::to_string(m.tubelet) + ", patch " +
                                std::to_string(m.patch));
  }
  if (!std::isfinite(t.tau)) throw std::invalid_argument("tokenizer: tau = " + std::to_string(t.tau) + " is not finite");
}

}  // namespace

std::string run_config_json(const ModelConfig& model, const TokenizerConfig& t, const std::vector<std::string>& names) {
  nn::Json tok = nn::Json::object();
  tok.set("tubelet", t.tubelet).set("patch", t.patch).set("tau", t.tau);
  tok.set("policy", policy_name(t.policy)).set("compare", compare_name(t.compare));
  nn::Json classes = nn::Json::array();
  for (const auto& n : names) classes.push_back(n);
  nn::Json j = nn::Json::object();
  j.set("model", nn::Json::parse(model.to_json())).set("tokenizer", tok).set("classes", classes);
  return j.dump();
}

RunConfig parse_run_config(const std::string& json) {
  const nn::Json j = nn::Json::parse(json);
  require_known_keys(j, {"model", "tokenizer", "classes"}, "glance.config");
  RunConfig c;
  c.model = ModelConfig::from_json(j["model"].dump());  // validated: sizes in range, names known
  const nn::Json& t = j["tokenizer"];
  require_known_keys(t, {"tubelet", "patch", "tau", "policy", "compare"}, "tokenizer");
  c.tokenizer.tubelet = t["tubelet"].as_int64();
  c.tokenizer.patch = t["patch"].as_int64();
  c.tokenizer.tau = t["tau"].as_double();
  c.tokenizer.policy = parse_drop_policy(t["policy"].as_string());
  c.tokenizer.compare = parse_compare_mode(t["compare"].as_string());
  check_tokenizer(c.tokenizer, c.model);
  for (const auto& n : j["classes"].as_array()) c.class_names.push_back(n.as_string());
  check_class_names(c.class_names, c.model.classes);
  return c;
}

RunConfig read_run_config(const std::string& path) {
  const nn::SafetensorsFile file = nn::load_safetensors(path);
  if (file.tensors.count("patch_embed.weight")) {
    throw std::runtime_error("checkpoint '" + path + "' has an earlier glance version's names (patch_embed.weight, now "
                             "patch_embed.proj.weight): `glance convert " + path + " NEW.safetensors` renames them");
  }
  auto it = file.metadata.find("glance.config");
  if (it == file.metadata.end()) {
    throw std::runtime_error("checkpoint '" + path + "' has no glance.config metadata (not written by glance train?)");
  }
  RunConfig config;
  try {
    config = parse_run_config(it->second);
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint '" + path + "': bad glance.config: " + e.what());
  }
  // The config passed its ranges, but a damaged or hostile file can still describe a model far larger than the
  // tensors it holds; building that model first would allocate what the config claims (up to
  // ModelLimits::parameters) before the tensors are compared with it. The model's tensors must hold at least
  // the weights the sizes imply.
  double numbers = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (name.rfind(nn::kOptimizerPrefix, 0) != 0) numbers += double(tensor.numel());
  }
  const ModelConfig& m = config.model;
  if (numbers < m.minimum_parameters()) {
    throw std::runtime_error("checkpoint '" + path + "': its glance.config (dim " + std::to_string(m.dim) + ", depth " +
                             std::to_string(m.depth) + ", mlp_ratio " + nn::Json(m.mlp_ratio).dump() + ", classes " +
                             std::to_string(m.classes) + ") needs at least " +
                             std::to_string(int64_t(m.minimum_parameters())) + " weights, but the file's model " +
                             "tensors hold " + std::to_string(int64_t(numbers)) + " numbers: the file is damaged");
  }
  return config;
}

}  // namespace glance::rlt
