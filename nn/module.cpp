#include "nn/module.h"

#include <stdexcept>

namespace glance::nn {

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw std::invalid_argument("Module: '" + name + "' is not a valid name (non-empty, no dots)");
  }
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list) if (n == name) return true;
    return false;
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) {
    throw std::invalid_argument("Module: the name '" + name + "' is already registered");
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name);
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name);
  if (!child) throw std::invalid_argument("Module: child '" + name + "' is null");
  child->train(training_);
  children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

void Module::to(Device device) {
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    Tensor moved = ops::to_device(t, device);
    // Swap the storage under the shared TensorImpl, so every handle to this tensor follows.
    TensorImpl& impl = t.impl();
    impl.storage = moved.storage();
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    impl.grad.reset();
  };
  for (auto& [_, t] : named_parameters()) move(t);
  for (auto& [_, t] : named_buffers()) move(t);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> mine = state_dict();
  // Validate everything first, so a bad state dict changes nothing.
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      if (strict) throw std::invalid_argument("load_state_dict: missing '" + name + "' " + shape_str(t.shape()));
      continue;
    }
    if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      throw std::invalid_argument("load_state_dict: '" + name + "' is " + dtype_name(it->second.dtype()) + " " +
                                  shape_str(it->second.shape()) + " in the state, " + dtype_name(t.dtype()) + " " +
                                  shape_str(t.shape()) + " in the model");
    }
  }
  if (strict) {
    for (const auto& [name, t] : state) {
      if (!mine.count(name)) throw std::invalid_argument("load_state_dict: unexpected '" + name + "' " + shape_str(t.shape()));
    }
  }
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it != state.end()) ops::copy_(t, it->second);
  }
}

}  // namespace glance::nn
