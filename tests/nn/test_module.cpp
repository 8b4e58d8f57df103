// Module: PyTorch-style dotted names in registration order, parameter counts by hand, train/eval
// propagation, zero_grad, state_dict round trips and every strict-loading failure (which must name the
// key and change nothing), name validation, and to(cpu) keeping handles.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/expect_throw.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/attention/multi_head.h"
#include "nn/transformer.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::expect_throw_containing;

BlockConfig small_block() {
  BlockConfig c;
  c.dim = 8;
  c.heads = 2;
  c.mlp_ratio = 4.0;
  return c;
}

// Every value of every tensor in a state dict, copied out (to compare before and after).
std::map<std::string, std::vector<float>> snapshot(const Module& m) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [name, t] : m.state_dict()) out[name] = t.to_vector<float>();
  return out;
}

// A two-level model with a buffer, to see parameters and buffers named through children.
class Net : public Module {
 public:
  Net() {
    fc = register_module("fc", std::make_shared<Linear>(3, 2));
    norm = register_module("norm", std::make_shared<LayerNorm>(2));
    scale = register_parameter("scale", ops::ones({2}));
    running = register_buffer("running", ops::zeros({2}));
  }
  std::shared_ptr<Linear> fc;
  std::shared_ptr<LayerNorm> norm;
  Tensor scale, running;
};

TEST(Module, NamedParametersOfATransformerBlockInRegistrationOrder) {
  TransformerBlock block(small_block());
  std::vector<std::string> names;
  for (auto& [name, _] : block.named_parameters()) names.push_back(name);
  std::vector<std::string> expected = {
      "norm1.weight",    "norm1.bias",     "attn.qkv.weight", "attn.qkv.bias",
      "attn.proj.weight", "attn.proj.bias", "norm2.weight",    "norm2.bias",
      "mlp.fc1.weight",  "mlp.fc1.bias",   "mlp.fc2.weight",  "mlp.fc2.bias",
  };
  EXPECT_EQ(names, expected);

  std::map<std::string, Shape> shapes;
  for (auto& [name, t] : block.named_parameters()) shapes[name] = t.shape();
  EXPECT_EQ(shapes["norm1.weight"], (Shape{8}));
  EXPECT_EQ(shapes["attn.qkv.weight"], (Shape{24, 8}));
  EXPECT_EQ(shapes["attn.qkv.bias"], (Shape{24}));
  EXPECT_EQ(shapes["attn.proj.weight"], (Shape{8, 8}));
  EXPECT_EQ(shapes["mlp.fc1.weight"], (Shape{32, 8}));
  EXPECT_EQ(shapes["mlp.fc1.bias"], (Shape{32}));
  EXPECT_EQ(shapes["mlp.fc2.weight"], (Shape{8, 32}));
  EXPECT_EQ(shapes["mlp.fc2.bias"], (Shape{8}));

  // The named tensors are the members themselves, not copies.
  auto params = block.named_parameters();
  EXPECT_TRUE(params[2].second.same(std::dynamic_pointer_cast<MultiHeadSelfAttention>(block.attn)->qkv->weight));
  EXPECT_TRUE(params[11].second.same(block.mlp->fc2->bias));
  for (auto& [name, t] : params) EXPECT_TRUE(t.requires_grad()) << name;
}

TEST(Module, NamedChildrenAndParametersOwnFirstThenChildren) {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, _] : net.named_parameters()) names.push_back(name);
  // Own parameters first, then each child's, depth first (as torch's named_parameters).
  EXPECT_EQ(names, (std::vector<std::string>{"scale", "fc.weight", "fc.bias", "norm.weight", "norm.bias"}));
  std::vector<std::string> buffers;
  for (auto& [name, _] : net.named_buffers()) buffers.push_back(name);
  EXPECT_EQ(buffers, (std::vector<std::string>{"running"}));
  EXPECT_FALSE(net.running.requires_grad());
  auto children = net.named_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0].first, "fc");
  EXPECT_EQ(children[1].first, "norm");
  EXPECT_EQ(net.parameters().size(), 5u);
}

TEST(Module, ParameterCountByHand) {
  // dim 8, hidden 32: norm1 8+8, qkv 8*24+24, proj 8*8+8, norm2 8+8, fc1 8*32+32, fc2 32*8+8.
  TransformerBlock block(small_block());
  int64_t expected = 16 + (192 + 24) + (64 + 8) + 16 + (256 + 32) + (256 + 8);
  EXPECT_EQ(expected, 872);
  EXPECT_EQ(block.parameter_count(), expected);

  Linear no_bias(5, 7, false);
  EXPECT_EQ(no_bias.parameter_count(), 35);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_FALSE(no_bias.bias.defined());

  Net net;  // buffers are not trainable scalars
  EXPECT_EQ(net.parameter_count(), 2 + 6 + 2 + 2 + 2);
}

TEST(Module, TrainAndEvalPropagateToEveryDescendant) {
  TransformerBlock block(small_block());
  EXPECT_TRUE(block.is_training());
  EXPECT_TRUE(block.mlp->drop->is_training());
  block.eval();
  EXPECT_FALSE(block.is_training());
  EXPECT_FALSE(block.attn->is_training());
  auto joint = std::dynamic_pointer_cast<MultiHeadSelfAttention>(block.attn);
  ASSERT_TRUE(joint);  // the default design
  EXPECT_FALSE(joint->proj_drop->is_training());
  EXPECT_FALSE(block.mlp->drop->is_training());
  EXPECT_FALSE(block.mlp->fc1->is_training());
  EXPECT_FALSE(block.drop_path->is_training());
  block.train();
  EXPECT_TRUE(joint->proj_drop->is_training());
  EXPECT_TRUE(block.mlp->drop->is_training());
  block.train(false);
  EXPECT_FALSE(block.norm2->is_training());

  // A child registered into a module in eval mode takes that mode.
  Module parent;
  parent.eval();
  auto child = parent.register_module("child", std::make_shared<Linear>(2, 2));
  EXPECT_FALSE(child->is_training());
}

TEST(Module, ZeroGradClearsEveryGradient) {
  Net net;
  Tensor x = ops::randn({4, 3});
  Tensor y = net.norm->forward(net.fc->forward(x)) * net.scale;
  sum(y * y).backward();
  for (auto& [name, t] : net.named_parameters()) EXPECT_TRUE(t.grad().defined()) << name;
  net.zero_grad();
  for (auto& [name, t] : net.named_parameters()) {
    Tensor g = t.grad();
    // Either cleared (torch's set_to_none) or zero-filled; both mean "no gradient".
    if (g.defined()) {
      for (float v : g.to_vector<float>()) EXPECT_EQ(v, 0.0f) << name;
    }
  }
}

TEST(Module, StateDictHoldsTheTensorsThemselves) {
  Net net;
  auto state = net.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, _] : state) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"fc.bias", "fc.weight", "norm.bias", "norm.weight", "running", "scale"}));
  EXPECT_TRUE(state["fc.weight"].same(net.fc->weight));
  EXPECT_TRUE(state["running"].same(net.running));
}

TEST(Module, LoadStateDictRoundTripCopiesValuesAndKeepsHandles) {
  manual_seed(1);
  Net a;
  ops::fill_(a.running, 3.5);
  manual_seed(2);
  Net b;
  ASSERT_NE(a.fc->weight.to_vector<float>(), b.fc->weight.to_vector<float>());
  Tensor b_weight = b.fc->weight;
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(snapshot(a), snapshot(b));
  EXPECT_EQ(b.running.to_vector<float>(), (std::vector<float>{3.5f, 3.5f}));
  // Same handle in b (updated in place), but a copy of a's values, not an alias.
  EXPECT_TRUE(b.fc->weight.same(b_weight));
  EXPECT_TRUE(b.state_dict()["fc.weight"].same(b_weight));
  EXPECT_NE(b.fc->weight.storage(), a.fc->weight.storage());
  ops::fill_(a.fc->weight, 9.0);
  for (float v : b.fc->weight.to_vector<float>()) EXPECT_NE(v, 9.0f);
  EXPECT_TRUE(b.fc->weight.requires_grad());
}

TEST(Module, StrictLoadRejectsAMissingKeyNamingItAndChangesNothing) {
  manual_seed(3);
  Net a;
  manual_seed(4);
  Net b;
  auto before = snapshot(b);
  auto state = a.state_dict();
  state.erase("norm.bias");
  expect_throw_containing([&] { b.load_state_dict(state); }, {"missing", "norm.bias"});
  EXPECT_EQ(snapshot(b), before);  // fc.* sort before norm.bias, and must not have been copied either
}

TEST(Module, StrictLoadRejectsAnUnexpectedKeyNamingItAndChangesNothing) {
  manual_seed(3);
  Net a;
  manual_seed(4);
  Net b;
  auto before = snapshot(b);
  auto state = a.state_dict();
  state["fc.extra"] = ops::zeros({2});
  expect_throw_containing([&] { b.load_state_dict(state); }, {"unexpected", "fc.extra"});
  EXPECT_EQ(snapshot(b), before);
}

TEST(Module, LoadRejectsAWrongShapeNamingItAndChangesNothing) {
  manual_seed(3);
  Net a;
  manual_seed(4);
  Net b;
  auto before = snapshot(b);
  auto state = a.state_dict();
  state["norm.weight"] = ops::ones({3});
  expect_throw_containing([&] { b.load_state_dict(state); }, {"norm.weight", "[3]", "[2]"});
  EXPECT_EQ(snapshot(b), before);
  // Also when not strict: a shape mismatch is never silently skipped.
  expect_throw_containing([&] { b.load_state_dict(state, false); }, {"norm.weight"});
  EXPECT_EQ(snapshot(b), before);
  // A wrong dtype is a mismatch too.
  state = a.state_dict();
  state["scale"] = ops::ones({2}, DType::Float64);
  expect_throw_containing([&] { b.load_state_dict(state); }, {"scale"});
  EXPECT_EQ(snapshot(b), before);
}

TEST(Module, NonStrictLoadSkipsMissingAndUnexpectedKeys) {
  manual_seed(3);
  Net a;
  manual_seed(4);
  Net b;
  auto before = snapshot(b);
  auto state = a.state_dict();
  state.erase("fc.bias");
  state["something.else"] = ops::zeros({5});
  b.load_state_dict(state, false);
  auto after = snapshot(b);
  EXPECT_EQ(after["fc.bias"], before["fc.bias"]);
  EXPECT_EQ(after["fc.weight"], a.fc->weight.to_vector<float>());
}

TEST(Module, RejectsDuplicateEmptyAndDottedNames) {
  Module m;
  m.register_parameter("w", ops::zeros({2}));
  expect_throw_containing([&] { m.register_parameter("w", ops::zeros({2})); }, {"'w'"});
  expect_throw_containing([&] { m.register_buffer("w", ops::zeros({2})); }, {"'w'"});
  expect_throw_containing([&] { m.register_module("w", std::make_shared<Linear>(2, 2)); }, {"'w'"});
  expect_throw_containing([&] { m.register_parameter("a.b", ops::zeros({2})); }, {"a.b"});
  expect_throw_containing([&] { m.register_module("c.d", std::make_shared<Linear>(2, 2)); }, {"c.d"});
  expect_throw_containing([&] { m.register_buffer("", ops::zeros({2})); }, {"name"});
  m.register_module("child", std::make_shared<Linear>(2, 2));
  expect_throw_containing([&] { m.register_parameter("child", ops::zeros({2})); }, {"child"});
  EXPECT_THROW(m.register_module<Linear>("null_child", nullptr), std::invalid_argument);
  // The failed registrations left nothing behind.
  std::vector<std::string> names;
  for (auto& [name, _] : m.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"w", "child.weight", "child.bias"}));
  EXPECT_TRUE(m.named_buffers().empty());
}

TEST(ModuleList, NamesChildrenByPosition) {
  Module model;
  auto list = model.register_module("blocks", std::make_shared<ModuleList>());
  auto first = list->push_back(std::make_shared<Linear>(2, 3));
  auto second = list->push_back(std::make_shared<Linear>(3, 1, false));
  EXPECT_EQ(list->size(), 2);
  std::vector<std::string> names;
  for (auto& [name, _] : model.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"blocks.0.weight", "blocks.0.bias", "blocks.1.weight"}));
  EXPECT_TRUE(model.state_dict()["blocks.1.weight"].same(second->weight));
  EXPECT_EQ(first->out_features, 3);
  model.eval();
  EXPECT_FALSE(second->is_training());
}

TEST(Module, ToCpuIsANoOpThatKeepsHandlesAndStorage) {
  Net net;
  auto handles = net.state_dict();
  std::map<std::string, const Storage*> storages;
  for (auto& [name, t] : handles) storages[name] = t.storage().get();
  auto before = snapshot(net);
  net.to(Device::cpu());
  auto after = net.state_dict();
  for (auto& [name, t] : after) {
    EXPECT_TRUE(t.same(handles[name])) << name;
    EXPECT_EQ(t.storage().get(), storages[name]) << name;
    EXPECT_TRUE(t.device().is_cpu()) << name;
  }
  EXPECT_EQ(snapshot(net), before);
  EXPECT_TRUE(net.fc->weight.requires_grad());
}

}  // namespace
