// Example 03: training a multi-layer perceptron on the built-in shapes task (disc, square, triangle,
// cross). Shows the whole loop: a Module, a DataLoader, cross-entropy, AdamW, a schedule, evaluation.
// Run: ./build/examples/03_train_mlp     (about 10 s on 2 cores)
#include <iostream>

#include "nn/data/dataloader.h"
#include "nn/data/shapes.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optim/adamw.h"
#include "nn/optim/schedule.h"
#include "nn/metrics_log.h"
#include "nn/progress.h"

using namespace glance;
using namespace glance::nn;

// image [B, 3, 16, 16] -> flatten -> 768 -> 256 -> GELU -> 256 -> GELU -> 4 classes
struct MlpClassifier : Module {
  std::shared_ptr<Linear> fc1, fc2, fc3;
  explicit MlpClassifier(int64_t inputs) {
    fc1 = register_module("fc1", std::make_shared<Linear>(inputs, 256));
    fc2 = register_module("fc2", std::make_shared<Linear>(256, 256));
    fc3 = register_module("fc3", std::make_shared<Linear>(256, SyntheticShapes::kClasses));
  }
  Tensor forward(const Tensor& images) const {
    Tensor x = flatten(images, 1);  // [B, 768]
    return fc3->forward(gelu(fc2->forward(gelu(fc1->forward(x)))));
  }
};

static double evaluate(const MlpClassifier& model, const Dataset& data) {
  autograd::NoGradGuard no_grad;
  DataLoader<LabeledBatch> loader(data.size(), {.batch_size = 256, .shuffle = false, .prefetch = 0},
                                  [&](const std::vector<int64_t>& idx) { return stack_examples(data, idx); });
  loader.start_epoch(0);
  double hits = 0;
  while (auto batch = loader.next()) hits += accuracy(model.forward(batch->inputs), batch->labels) * batch->labels.numel();
  return hits / static_cast<double>(data.size());
}

int main() {
  manual_seed(0);
  SyntheticShapes train({.count = 4096, .image_size = 16, .seed = 1});
  SyntheticShapes val({.count = 1024, .image_size = 16, .seed = 2});
  MlpClassifier model(3 * 16 * 16);
  std::cout << "MLP with " << model.parameter_count() << " parameters:\n";
  for (auto& [name, p] : model.named_parameters()) std::cout << "  " << name << " " << shape_str(p.shape()) << "\n";

  const int64_t epochs = 8, batch_size = 64;
  DataLoader<LabeledBatch> loader(train.size(), {.batch_size = batch_size, .shuffle = true, .seed = 0},
                                  [&](const std::vector<int64_t>& idx) { return stack_examples(train, idx); });
  AdamW optimizer(decay_groups(model, 1e-3, 0.05));
  const int64_t total = epochs * loader.batches_per_epoch();
  ProgressBar bar(total, "images", std::cout);
  MetricsLog log("runs/03_train_mlp.metrics.jsonl");  // one JSON line per step
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (auto batch = loader.next()) {
      optimizer.set_lr(warmup_cosine_lr(step, total, total / 10, 2e-3));
      Tensor logits = model.forward(batch->inputs);
      Tensor loss = cross_entropy(logits, batch->labels);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      double batch_loss = loss.item(), batch_acc = accuracy(logits, batch->labels);
      bar.update(++step, batch->labels.numel(), batch_loss, batch_acc);
      log.write(Json::object().set("step", step).set("epoch", epoch).set("loss", batch_loss).set("accuracy", batch_acc)
                    .set("lr", optimizer.groups()[0].lr));
    }
  }
  bar.finish();
  double acc = evaluate(model, val);
  log.write(Json::object().set("phase", "validation").set("accuracy", acc));
  std::cout << "validation accuracy: " << acc << " (chance is 0.25); metrics in " << log.path() << "\n";
  return acc > 0.5 ? 0 : 1;
}
