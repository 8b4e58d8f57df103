// Module: the base of every layer and model. A module owns named parameters (trained), buffers (state
// that is saved but not trained) and child modules, and names them the way PyTorch does, so a weight is
// called `blocks.0.attn.qkv.weight` in glance, in a checkpoint, and in the PyTorch port of the model.
//
//   struct Mlp : Module {
//     std::shared_ptr<Linear> fc1, fc2;
//     Mlp() { fc1 = register_module("fc1", std::make_shared<Linear>(8, 32));
//             fc2 = register_module("fc2", std::make_shared<Linear>(32, 2)); }
//     Tensor forward(const Tensor& x) { return fc2->forward(gelu(fc1->forward(x))); }
//   };
//
// Tensors are handles to a shared TensorImpl, so the member `weight` and the registry's entry are the
// same tensor: `to(device)` and `load_state_dict` update it in place and every handle sees the change.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"

namespace glance::nn {

class Module {
 public:
  virtual ~Module() = default;

  // ---- registration (call in the constructor) ----
  Tensor register_parameter(const std::string& name, Tensor value);  // sets requires_grad
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // ---- walking the tree (depth first, in registration order; names are dotted paths) ----
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;  // number of trainable scalars

  // ---- modes ----
  void train(bool on = true);  // recursive; Dropout and DropPath act only in training mode
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

  // ---- device and state ----
  void to(Device device);  // moves every parameter and buffer, keeping the handles valid
  // Parameters and buffers by dotted name (the tensors themselves, not copies).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in. strict: every name must match both ways; shapes and dtypes must match.
  // Throws naming the first problem, before anything is copied.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A list of child modules named "0", "1", ... (PyTorch's nn.ModuleList), so a model's blocks are called
// blocks.0.attn.qkv.weight and so on.
class ModuleList : public Module {
 public:
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> child) {
    return register_module(std::to_string(count_++), std::move(child));
  }
  int64_t size() const { return count_; }

 private:
  int64_t count_ = 0;
};

}  // namespace glance::nn
