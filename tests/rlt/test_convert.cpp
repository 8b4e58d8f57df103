// Checkpoints of other libraries in glance (rlt/convert.h), against the outputs of the libraries themselves:
// tests/fixtures/models holds small randomly initialised models of each layout, saved by transformers and timm,
// and what their own forward passes computed on generated clips (scripts/make_model_fixtures.py). Each converted
// model must give the same hidden states after every block and the same logits, within 1e-4, dense and with RLT.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nn/safetensors.h"
#include "rlt/cli_testing.h"
#include "rlt/convert.h"
#include "rlt/error_text.h"
#include "rlt/model.h"
#include "rlt/run_config.h"
#include "rlt/tokenizer.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;
using test_support::Contains;
using test_support::Output;
using test_support::run_glance;
using test_support::error_of;

const std::string kFixtures = GLANCE_MODEL_FIXTURES;
constexpr double kTolerance = 1e-4;

const std::map<std::string, Tensor>& expected() {
  static const std::map<std::string, Tensor> e = nn::load_safetensors(kFixtures + "/expected.safetensors").tensors;
  return e;
}

Tensor clips() {  // pixel_values [B, T, 3, H, W], ImageNet-normalised
  return nn::load_safetensors(kFixtures + "/clips.safetensors").tensors.at("pixel_values");
}

std::shared_ptr<RLTransformer> build(const GlanceModel& g) {
  auto model = std::make_shared<RLTransformer>(g.config);
  model->load_state_dict(g.tensors);
  model->eval();
  return model;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return 1e30;
  return ops::max(ops::unary(UnaryOp::Abs, ops::binary(BinaryOp::Sub, a, b))).item();
}

// The model's forward, keeping what each block gives: x [N_total, D] after block i, for every i; then the logits.
struct Trace {
  std::vector<Tensor> blocks;
  Tensor logits;
};
Trace trace(const RLTransformer& m, const PackedClips& p) {
  Trace t;
  Tensor x = m.patch_embed->forward(p.tubelets);
  x = ops::binary(BinaryOp::Add, x, positional_encoding(m.pos_table, p.layout));
  if (m.length_embed) x = ops::binary(BinaryOp::Add, x, m.length_embed->forward(p.layout));
  for (const auto& block : m.blocks) {
    x = block->forward(x, p.layout);
    t.blocks.push_back(x);
  }
  if (m.head) t.logits = m.forward(p.tubelets, p.layout);
  return t;
}

PackedClips tokenize_all(const Tensor& pixel_values, const ModelConfig& c, DropPolicy policy,
                         std::vector<TokenizedClip>* each = nullptr) {
  TokenizerConfig tc;
  tc.tubelet = c.tubelet, tc.patch = c.patch, tc.tau = 0.1, tc.policy = policy;
  std::vector<TokenizedClip> tokenized;
  for (int64_t b = 0; b < pixel_values.size(0); ++b) {
    tokenized.push_back(tokenize(ops::contiguous(ops::squeeze(ops::narrow(pixel_values, 0, b, 1), 0)), tc));
  }
  if (each) *each = tokenized;
  return pack_clips(tokenized);
}

GlanceModel convert(const std::string& in, ConvertOptions o = {}) {
  const ForeignCheckpoint f = read_foreign_checkpoint(kFixtures + "/" + in);
  return to_glance(f, detect_layout(f.tensors), o);
}

// The dense reference [B, N, D] as glance's packed rows [B * N, D].
Tensor packed(const Tensor& t) { return ops::reshape(t, {t.size(0) * t.size(1), t.size(2)}); }

void expect_dense_parity(const GlanceModel& g) {
  auto model = build(g);
  const Trace t = trace(*model, tokenize_all(clips(), g.config, DropPolicy::Dense));
  for (size_t i = 0; i < t.blocks.size(); ++i) {
    EXPECT_LT(max_abs_diff(t.blocks[i], packed(expected().at("dense.block" + std::to_string(i)))), kTolerance) << "block " << i;
  }
  EXPECT_LT(max_abs_diff(t.logits, expected().at("dense.logits")), kTolerance);
}

TEST(Convert, TransformersVideoMAEGivesTheLibrarysOutputsBlockByBlock) {
  std::vector<std::string> notes;
  ConvertOptions o;
  o.notes = &notes;
  const GlanceModel g = convert("hf_videomae", o);
  EXPECT_EQ(g.config.dim, 48);
  EXPECT_EQ(g.config.heads, 3);
  EXPECT_EQ(g.config.pos_kind, "1d");
  EXPECT_EQ(g.config.norm_eps, 1e-12);
  EXPECT_EQ(g.class_names, (std::vector<std::string>{"class_0", "class_1", "class_2", "class_3", "class_4"}));
  EXPECT_FALSE(notes.empty());
  expect_dense_parity(g);
}

TEST(Convert, WithRLTTheConvertedModelGivesEachClipsKeptTokensTheLibrarysOutputs) {
  const GlanceModel g = convert("hf_videomae");
  auto model = build(g);
  std::vector<TokenizedClip> each;
  const PackedClips p = tokenize_all(clips(), g.config, DropPolicy::RLT, &each);
  // The keep mask: glance's tokenizer against the paper's code, written again in the fixture script.
  const Tensor keep = expected().at("rlt.keep");  // uint8 [B, N]
  const nn::Grid grid = g.config.grid();
  for (size_t b = 0; b < each.size(); ++b) {
    std::vector<uint8_t> mine(static_cast<size_t>(grid.size()), 0);
    for (int64_t i = 0; i < each[b].tokens(); ++i) {
      mine[size_t((each[b].t[size_t(i)] * grid.h + each[b].h[size_t(i)]) * grid.w + each[b].w[size_t(i)])] = 1;
    }
    for (int64_t i = 0; i < grid.size(); ++i) {
      ASSERT_EQ(mine[size_t(i)], keep.data<uint8_t>()[int64_t(b) * grid.size() + i]) << "clip " << b << " tubelet " << i;
    }
  }
  ASSERT_LT(p.layout.total_tokens(), 2 * grid.size());  // something was dropped
  const Trace t = trace(*model, p);
  for (size_t i = 0; i < t.blocks.size(); ++i) {
    int64_t start = 0;
    for (size_t b = 0; b < each.size(); ++b) {
      const Tensor want = expected().at("rlt.clip" + std::to_string(b) + ".block" + std::to_string(i));
      EXPECT_LT(max_abs_diff(ops::narrow(t.blocks[i], 0, start, each[b].tokens()), want), kTolerance)
          << "clip " << b << " block " << i;
      start += each[b].tokens();
    }
  }
  EXPECT_LT(max_abs_diff(t.logits, expected().at("rlt.logits")), kTolerance);
}

TEST(Convert, VideoMAEv2NamesGiveTheSameModel) {
  ConvertOptions o;
  o.heads = 3, o.frames = 8, o.image_size = 32;
  expect_dense_parity(convert("videomae_v2.safetensors", o));
}

TEST(Convert, ABareVideoMAEEncoderConvertsWithoutAHead) {
  const GlanceModel g = convert("hf_videomae_bare");
  EXPECT_EQ(g.config.classes, 0);
  auto model = build(g);
  const Trace t = trace(*model, tokenize_all(clips(), g.config, DropPolicy::Dense));
  EXPECT_LT(max_abs_diff(t.blocks.back(), packed(expected().at("bare.last_hidden_state"))), kTolerance);
}

TEST(Convert, TimmViTInflatedByAveragingEmbedsAStillClipLikeItsImage) {
  ConvertOptions o;
  o.inflate = "average", o.frames = 2, o.tubelet = 2;
  const GlanceModel g = convert("timm_vit", o);
  EXPECT_EQ(g.config.pos_kind, "table");
  auto model = build(g);
  // Each clip's first frame, twice: a still clip of one tubelet in time.
  const Tensor first = ops::narrow(clips(), 1, 0, 1);
  const Tensor still = ops::contiguous(ops::expand(first, {first.size(0), 2, 3, first.size(3), first.size(4)}));
  const Trace t = trace(*model, tokenize_all(still, g.config, DropPolicy::Dense));
  for (size_t i = 0; i < t.blocks.size(); ++i) {
    EXPECT_LT(max_abs_diff(t.blocks[i], packed(expected().at("timm.block" + std::to_string(i)))), kTolerance) << "block " << i;
  }
  EXPECT_LT(max_abs_diff(t.logits, expected().at("timm.logits")), kTolerance);
}

TEST(Convert, CentralInflationPutsTheKernelOnTheMiddleFrameOnly) {
  ConvertOptions o;
  o.inflate = "central", o.frames = 4, o.tubelet = 2;
  const GlanceModel g = convert("timm_vit", o);
  const Tensor k = g.tensors.at("patch_embed.proj.weight");  // [D, 3, 2, p, p]
  const Tensor image_kernel = nn::load_safetensors(kFixtures + "/timm_vit/model.safetensors").tensors.at("patch_embed.proj.weight");
  EXPECT_EQ(max_abs_diff(ops::squeeze(ops::narrow(k, 2, 1, 1), 2), image_kernel), 0.0);
  EXPECT_EQ(ops::max(ops::unary(UnaryOp::Abs, ops::narrow(k, 2, 0, 1))).item(), 0.0);
  EXPECT_EQ(g.tensors.at("pos_table").size(0), 2 * 16);  // the 16 patch positions over 2 time steps
}

TEST(Convert, OutOfGlanceAndBackIsExact) {
  const GlanceModel g = convert("hf_videomae");
  for (CheckpointLayout to : {CheckpointLayout::HfVideoMAE, CheckpointLayout::VideoMAEv2}) {
    const ForeignModel f = from_glance(g, to);
    ForeignCheckpoint again{"memory", f.tensors, {}, f.config_json};
    ConvertOptions o;
    o.heads = 3, o.frames = 8, o.image_size = 32;
    const GlanceModel back = to_glance(again, detect_layout(f.tensors), o);
    for (const auto& [name, t] : g.tensors) EXPECT_EQ(max_abs_diff(back.tensors.at(name), t), 0.0) << layout_name(to) << " " << name;
  }
  // transformers' names exactly as its save_pretrained writes them (the fixture's own file).
  const ForeignModel f = from_glance(g, CheckpointLayout::HfVideoMAE);
  const auto original = nn::load_safetensors(kFixtures + "/hf_videomae/model.safetensors").tensors;
  ASSERT_EQ(f.tensors.size(), original.size());
  for (const auto& [name, t] : original) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    EXPECT_EQ(max_abs_diff(f.tensors.at(name), t), 0.0) << name;
  }
}

TEST(Convert, ViTBNamesAndShapesAreTransformersOwn) {
  // The list the library gives for VideoMAEForVideoClassification with its default (ViT-B/16, 16 x 224) config.
  std::ifstream list(kFixtures + "/videomae_vitb_names.txt");
  std::map<std::string, Shape> want;
  for (std::string line; std::getline(list, line);) {
    std::istringstream s(line);
    std::string name;
    s >> name;
    Shape shape;
    for (int64_t d; s >> d;) shape.push_back(d);
    want[name] = shape;
  }
  ASSERT_EQ(want.size(), 186u);
  // glance's ViT-B, built with one block (initialising twelve takes seconds) whose tensors stand for all twelve:
  // the blocks are alike.
  ModelConfig c = model_preset("base");
  c.pos_kind = "1d", c.classes = 400, c.drop_path = 0, c.length_encoding = false, c.depth = 1;
  RLTransformer one_block(c);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : one_block.state_dict()) {
    if (name.rfind("blocks.0.", 0) != 0) {
      state[name] = t;
      continue;
    }
    for (int i = 0; i < 12; ++i) state["blocks." + std::to_string(i) + name.substr(8)] = t;
  }
  c.depth = 12;
  GlanceModel g{c, std::vector<std::string>(400, "x"), state};
  const ForeignModel f = from_glance(g, CheckpointLayout::HfVideoMAE);
  ASSERT_EQ(f.tensors.size(), want.size());
  for (const auto& [name, shape] : want) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    EXPECT_EQ(f.tensors.at(name).shape(), shape) << name;
  }
}

TEST(Convert, WhatATargetCannotExpressIsRefusedOrDroppedOnlyWithTheFlag) {
  GlanceModel g = convert("hf_videomae");
  g.tensors["length_embed.weight"] = ops::full(g.tensors.at("length_embed.weight").shape(), 0.5);
  EXPECT_TRUE(Contains(error_of([&] { from_glance(g, CheckpointLayout::HfVideoMAE); }), "cannot express the length encoding"));
  std::vector<std::string> notes;
  ConvertOptions o;
  o.drop_unsupported = true, o.notes = &notes;
  EXPECT_NO_THROW(from_glance(g, CheckpointLayout::HfVideoMAE, o));
  EXPECT_NE(notes.front().find("dropped: the length encoding"), std::string::npos);

  g = convert("hf_videomae");
  g.config.pos_kind = "3d";
  EXPECT_TRUE(Contains(error_of([&] { from_glance(g, CheckpointLayout::VideoMAEv2); }), "positional table of kind '3d'"));
  EXPECT_TRUE(Contains(error_of([&] { from_glance(convert("hf_videomae"), CheckpointLayout::TimmViT); }), "one time step"));
}

TEST(Convert, BadInputIsNamed) {
  EXPECT_TRUE(Contains(error_of([] { read_foreign_checkpoint(kFixtures + "/no-such-model"); }), "does not exist"));
  const std::string pickle = (std::filesystem::temp_directory_path() / "glance_test_convert.pth").string();
  std::ofstream(pickle) << "not read";
  EXPECT_TRUE(Contains(error_of([&] { read_foreign_checkpoint(pickle); }), "scripts/pth_to_safetensors.py"));
  std::filesystem::remove(pickle);
  EXPECT_TRUE(Contains(error_of([] { detect_layout({{"fc.weight", ops::zeros({2, 2})}}); }), "no known layout"));
  EXPECT_TRUE(Contains(error_of([] { parse_checkpoint_layout("keras"); }), "choose glance, hf-videomae"));
  // A tensor the mapping does not know is an error, not silently dropped.
  ForeignCheckpoint f = read_foreign_checkpoint(kFixtures + "/hf_videomae");
  f.tensors["videomae.layernorm.weight"] = ops::zeros({48});
  EXPECT_TRUE(Contains(error_of([&] { to_glance(f, CheckpointLayout::HfVideoMAE); }), "videomae.layernorm.weight"));
  // Without its config.json, the heads are unknown.
  f = read_foreign_checkpoint(kFixtures + "/hf_videomae");
  f.config_json.clear();
  EXPECT_TRUE(Contains(error_of([&] { to_glance(f, CheckpointLayout::HfVideoMAE); }), "config.json"));
  // A width without a standard head count needs --heads.
  EXPECT_TRUE(Contains(error_of([] { convert("videomae_v2.safetensors"); }), "--heads"));
}

// The command line: what it read, the notes, what it wrote; a missing output folder named before any work.
TEST(Convert, CommandLineSaysWhatItFoundAndWrote) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "glance_test_convert_cli";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Output out = run_glance("convert " + kFixtures + "/hf_videomae " + (dir / "m.safetensors").string());
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_TRUE(Contains(out.text, "transformers VideoMAE classifier (videomae.*), 2 blocks, 5 classes"));
  EXPECT_TRUE(Contains(out.text, "wrote"));
  out = run_glance("convert " + (dir / "m.safetensors").string() + " " + (dir / "hf").string() + " --to hf-videomae");
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_TRUE(std::filesystem::exists(dir / "hf" / "config.json"));
  out = run_glance("convert " + kFixtures + "/hf_videomae " + (dir / "missing" / "m.safetensors").string());
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "does not exist"));
  out = run_glance("convert " + kFixtures + "/hf_videomae " + (dir / "x").string() + " --to keras");
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "unknown checkpoint layout 'keras'"));
  std::filesystem::remove_all(dir);
}

TEST(Convert, AnEarlierGlanceCheckpointIsRefusedWithTheCommandThatRenamesIt) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "glance_test_convert_legacy";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // A checkpoint as glance wrote it before the tubelet embedding's parameters moved under "proj".
  const GlanceModel g = convert("hf_videomae");
  std::map<std::string, Tensor> old = g.tensors;
  for (const char* part : {"weight", "bias"}) {
    old[std::string("patch_embed.") + part] = old.at(std::string("patch_embed.proj.") + part);
    old.erase(std::string("patch_embed.proj.") + part);
  }
  const std::string before = (dir / "old.safetensors").string(), after = (dir / "new.safetensors").string();
  TokenizerConfig tokenizer;
  tokenizer.tubelet = g.config.tubelet, tokenizer.patch = g.config.patch;
  nn::save_safetensors(before, old, {{"glance.config", run_config_json(g.config, tokenizer, g.class_names)}});

  Output out = run_glance("eval --load " + before);
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "`glance convert " + before + " NEW.safetensors` renames them"));
  out = run_glance("convert " + before + " " + after);
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_TRUE(Contains(out.text, "glance RLT transformer (an earlier version's names)"));
  const auto renamed = nn::load_safetensors(after).tensors;
  for (const auto& [name, t] : g.tensors) {
    ASSERT_TRUE(renamed.count(name)) << name;
    EXPECT_EQ(max_abs_diff(renamed.at(name), t), 0.0) << name;
  }
  std::filesystem::remove_all(dir);
}

TEST(Convert, PredictAppliesOrRemovesRLTWhateverTheModelWasTrainedWith) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "glance_test_convert_predict";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "m.safetensors").string();
  ASSERT_EQ(run_glance("convert " + kFixtures + "/hf_videomae " + model).status, 0);
  ASSERT_EQ(run_glance("generate --out " + (dir / "clips").string() + " --count 1").status, 0);
  std::filesystem::path clip;
  for (const auto& c : std::filesystem::recursive_directory_iterator(dir / "clips")) {
    if (c.is_directory() && c.path().filename().string().rfind("clip_", 0) == 0) clip = c.path();
  }
  ASSERT_FALSE(clip.empty());
  for (const std::string policy : {"dense", "rlt"}) {
    const Output out = run_glance("predict --load " + model + " " + clip.string() + " --drop " + policy);
    EXPECT_EQ(out.status, 0) << out.text;
    EXPECT_TRUE(Contains(out.text, "\"policy\":\"" + policy + "\""));
  }
  const Output out = run_glance("predict --load " + model + " " + clip.string() + " --drop none");
  EXPECT_EQ(out.status, 1);
  EXPECT_TRUE(Contains(out.text, "unknown drop policy 'none'"));
  std::filesystem::remove_all(dir);
}

}  // namespace
