#include "rlt/init_from.h"

#include <stdexcept>

#include "nn/checkpoint_checks.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace glance::rlt {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

InitFromResult init_from(const std::string& path, RLTransformer& model) {
  const nn::SafetensorsFile file = nn::load_safetensors(path);
  const auto state = model.state_dict();
  InitFromResult result;
  // The head is the one part whose shape may differ: a new task has its own classes.
  const auto head = file.tensors.find("head.weight");
  result.new_head = head == file.tensors.end() || head->second.shape() != model.head->weight.shape();
  std::map<std::string, Tensor> take;
  for (const auto& [name, t] : state) {
    const bool head_part = starts_with(name, "head.");
    if (head_part && result.new_head) {
      result.kept.push_back(name);
      continue;
    }
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      if (starts_with(name, "fc_norm.") && result.new_head) {  // an encoder without its classifier
        result.kept.push_back(name);
        continue;
      }
      throw std::invalid_argument("--init-from " + path + ": no tensor '" + name + "' (the model's is " +
                                  shape_str(t.shape()) + "); the file's model has another architecture");
    }
    if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      throw std::invalid_argument("--init-from " + path + ": '" + name + "' is " + dtype_name(it->second.dtype()) + " " +
                                  shape_str(it->second.shape()) + ", the model's is " + dtype_name(t.dtype()) + " " +
                                  shape_str(t.shape()));
    }
    take[name] = it->second;
  }
  nn::check_all_finite(take, path, "--init-from");
  model.load_state_dict(take, /*strict=*/false);
  return result;
}

std::vector<nn::ParamGroup> with_head_lr_scale(std::vector<nn::ParamGroup> groups, const RLTransformer& model,
                                               double head_lr_scale) {
  if (head_lr_scale == 1.0 || !model.head) return groups;
  std::vector<nn::ParamGroup> out;
  for (nn::ParamGroup& g : groups) {
    nn::ParamGroup body = g, head = g;
    body.params.clear(), head.params.clear();
    head.lr_scale = g.lr_scale * head_lr_scale;
    for (const Tensor& p : g.params) {
      const bool is_head = p.impl_ptr() == model.head->weight.impl_ptr() ||
                           (model.head->bias.defined() && p.impl_ptr() == model.head->bias.impl_ptr());
      (is_head ? head : body).params.push_back(p);
    }
    if (!body.params.empty()) out.push_back(body);
    if (!head.params.empty()) out.push_back(head);
  }
  return out;
}

}  // namespace glance::rlt
