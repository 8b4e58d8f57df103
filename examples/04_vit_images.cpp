// Example 04: a small Vision Transformer on the built-in shapes task. Images become patches, patches
// become tokens, tokens attend to each other (only within their own image: a packed TokenLayout), and
// the class token is classified. Run: ./build/examples/04_vit_images   (under a minute on 2 cores)
#include <iostream>

#include "nn/data/dataloader.h"
#include "nn/data/shapes.h"
#include "nn/loss.h"
#include "nn/optim/adamw.h"
#include "nn/optim/schedule.h"
#include "nn/metrics_log.h"
#include "nn/progress.h"
#include "nn/vit.h"

using namespace glance;
using namespace glance::nn;

static double evaluate(const VisionTransformer& model, const Dataset& data) {
  autograd::NoGradGuard no_grad;
  DataLoader<LabeledBatch> loader(data.size(), {.batch_size = 128, .shuffle = false, .prefetch = 0},
                                  [&](const std::vector<int64_t>& idx) { return stack_examples(data, idx); });
  loader.start_epoch(0);
  double hits = 0;
  while (auto batch = loader.next()) hits += accuracy(model.forward(batch->inputs), batch->labels) * batch->labels.numel();
  return hits / static_cast<double>(data.size());
}

int main() {
  manual_seed(0);
  SyntheticShapes train({.count = 3072, .image_size = 16, .seed = 1});
  SyntheticShapes val({.count = 512, .image_size = 16, .seed = 2});
  ViTConfig config;
  config.image_size = 16;
  config.patch_size = 4;  // 16 patches + 1 class token = 17 tokens per image
  config.classes = SyntheticShapes::kClasses;
  config.dim = 64;
  config.depth = 3;
  config.heads = 4;
  VisionTransformer model(config);
  model.train();
  std::cout << "ViT with " << model.parameter_count() << " parameters, e.g.\n";
  int shown = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (shown++ < 10) std::cout << "  " << name << " " << shape_str(p.shape()) << "\n";
  }

  const int64_t epochs = 12, batch_size = 64;
  DataLoader<LabeledBatch> loader(train.size(), {.batch_size = batch_size, .shuffle = true, .seed = 0},
                                  [&](const std::vector<int64_t>& idx) { return stack_examples(train, idx); });
  AdamW optimizer(decay_groups(model, 1e-3, 0.05));
  const int64_t total = epochs * loader.batches_per_epoch();
  ProgressBar bar(total, "images", std::cout);
  MetricsLog log("runs/04_vit_images.metrics.jsonl");  // one JSON line per step
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (auto batch = loader.next()) {
      optimizer.set_lr(warmup_cosine_lr(step, total, total / 10, 2e-3));
      Tensor logits = model.forward(batch->inputs);
      Tensor loss = cross_entropy(logits, batch->labels, 0.1);
      optimizer.zero_grad();
      loss.backward();
      clip_grad_norm(model.parameters(), 1.0);
      optimizer.step();
      double batch_loss = loss.item(), batch_acc = accuracy(logits, batch->labels);
      bar.update(++step, batch->labels.numel(), batch_loss, batch_acc);
      log.write(Json::object().set("step", step).set("epoch", epoch).set("loss", batch_loss).set("accuracy", batch_acc)
                    .set("lr", optimizer.groups()[0].lr));
    }
  }
  bar.finish();
  model.eval();
  double acc = evaluate(model, val);
  log.write(Json::object().set("phase", "validation").set("accuracy", acc));
  std::cout << "validation accuracy: " << acc << " (chance is 0.25); metrics in " << log.path() << "\n";
  return acc > 0.5 ? 0 : 1;
}
