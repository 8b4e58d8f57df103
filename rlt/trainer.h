// Training and evaluating the RLT transformer: the loop that `glance train` and `glance demo` run.
//
//   for each batch (built on a background thread):  clips -> tokenize (dense | rlt | random) -> pack
//     (with device = cuda: the thread stacks the clips into frames [B, T, 3, H, W]; the main thread uploads
//      them and tokenizes and packs on the GPU, rlt/batch_tokenizer.h)
//     logits = model(tubelets, layout); loss = cross_entropy(logits, labels, smoothing)
//     backward; clip the gradient norm; AdamW step with linear warm-up then cosine decay
//     (with loss_scaling: the loss is scaled before backward and the gradients unscaled after; a step whose
//      gradients overflowed is skipped: nn/optim/loss_scaler.h)
//   with several ranks (dist/): each rank takes its share of the global batch (by clips or by tokens), its loss
//     is its clips' part of the global mean, and the gradients are summed over the ranks in buckets started
//     during backward; rank 0 alone writes the checkpoint, the metrics and the progress bar
//   every step: a progress bar line and a JSON line in the metrics log; a save every save_every steps and at
//     each epoch's end; a loss or gradient norm that is NaN
//     or infinite stops the run there (NonFiniteTraining), before anything is saved
//
// Throughput (clips/s) counts training clips over the wall time of the training loop, data loading and
// tokenization included (they overlap with compute on the loader's thread).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "dist/communicator.h"
#include "dist/sharding.h"
#include "nn/optim/adamw.h"
#include "nn/optim/loss_scaler.h"
#include "rlt/model.h"
#include "rlt/run_config.h"
#include "rlt/tokenizer.h"
#include "rlt/video_dataset.h"

namespace glance::rlt {

struct TrainOptions {
  ModelConfig model;
  TokenizerConfig tokenizer;
  Device device = Device::cpu();  // where the model, its training and its evaluation run
  int64_t epochs = 10;
  int64_t steps = 0;            // > 0: train exactly this many steps (overrides epochs)
  int64_t batch_size = 16;
  double lr = 1e-3, min_lr = 1e-5, weight_decay = 0.05;
  double warmup = 0.1;          // fraction of the steps spent warming up
  double label_smoothing = 0.1;
  double clip_grad = 1.0;       // <= 0: no clipping
  bool loss_scaling = false;    // dynamic loss scaling: needed with the fp16 attention kernel ("fused_fp16"),
  nn::LossScalerOptions loss_scaler;  // whose 16-bit gradients would otherwise underflow (bf16 needs none).
                                      // The scale is not saved in checkpoints: a resumed run starts again at
                                      // init_scale (costing at most a few skipped steps while it backs off).
  uint64_t seed = 0;            // model init, shuffling, augmentation, random dropping
  int64_t eval_every = 0;       // > 0: evaluate every this many epochs too (metrics get "val_acc")
  std::string metrics_path;     // JSON Lines; empty: none
  std::string save_path;        // training state written at the end (and each epoch); empty: none
  int64_t save_every = 0;       // > 0: also every this many steps (a crash loses fewer than this many)
  std::string init_from;        // start from this checkpoint's weights (a new run: rlt/init_from.h); a new head
                                // when its classes differ from the data's
  double head_lr_scale = 1.0;   // the head's learning rate over the others' (with init_from: a new head)
  std::string load_path;        // resume from this training state (bit-exact on the CPU: data order,
                                // augmentation, random generators, schedule); the metrics log is continued
  const std::atomic<bool>* stop_requested = nullptr;  // set (by a signal handler): finish the step, save, stop
  int64_t stop_at = 0;          // > 0: stop after this step (saving), as if interrupted; the schedule
                                // still spans all the steps, so a resumed run continues it exactly
  bool progress = true;
  std::string name = "train";   // shown in the progress bar and in the metrics
  // Data parallelism (docs/13): the ranks of this run, or nullptr for one process (the run is then exactly
  // as in a build without MPI). batch_size stays the global batch.
  dist::Communicator* world = nullptr;
  dist::ShardMode shard = dist::ShardMode::Tokens;
  int64_t bucket_bytes = 4 << 20;  // gradient bucket cap (dist/bucket_plan.h)
};

// With several ranks: how the run shared its batches out and what the exchange cost (RunResult::parallel).
struct ParallelResult {
  int ranks = 1;
  std::string shard, transport;
  double imbalance = 0;             // mean over steps of max / mean tokens per rank, as the run was sharded
  double imbalance_by_clips = 0;    // with --shard tokens: the same for an equal split of clips (else 0)
  double imbalance_by_tokens = 0;   // with --shard tokens: = imbalance
  double comm_ms_per_step = 0;      // flattening the buckets, starting them and waiting for the sums
  double wait_ms_per_step = 0;      // waiting for the slowest rank to finish its backward pass (arrive)
  int64_t allreduce_bytes_per_step = 0;  // gradient bytes summed over the ranks each step
  int64_t buckets = 0;
  double buckets_started_in_backward = 0;  // fraction of buckets started before backward returned
};

// Thrown when a step's loss or gradient norm is NaN or infinite: training stops at that step, and nothing of
// the state it produced is written (the last checkpoint on disk is the last good one).
class NonFiniteTraining : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EvalResult {
  double accuracy = 0, loss = 0, kept_fraction = 0;
  int64_t videos = 0;
};

struct RunResult {
  int64_t steps = 0, clips = 0;
  double seconds = 0, clips_per_s = 0;
  double kept_fraction = 0;   // tokens kept / grid tokens over all training batches
  double final_loss = 0;      // mean training loss of the last epoch (or last 20 steps)
  int64_t parameters = 0;
  double step_ms = 0;                 // mean wall time of a training step (forward, backward, update)
  double forward_gflop_per_clip = 0;  // matmul work of the forward pass (tensor/counters.h), per clip
  double peak_memory_mb = 0;          // most tensor bytes held during training, above what was held before
  double loss_scale = 0;              // with loss scaling: the scale at the end (else 0)
  int64_t skipped_steps = 0;          // with loss scaling: steps skipped because a gradient overflowed
  bool stopped_early = false;         // stop_requested was set: the run ended after last_step, saved
  int64_t last_step = 0;              // the step count at the end (a resumed run's earlier steps included)
  EvalResult val;
  ParallelResult parallel;
};

class Trainer {
 public:
  Trainer(TrainOptions options, const VideoDataset& train, const VideoDataset* val);
  RunResult run();
  RLTransformer& model() { return *model_; }

 private:
  TrainOptions options_;
  const VideoDataset& train_;
  const VideoDataset* val_;
  std::shared_ptr<RLTransformer> model_;
  std::unique_ptr<nn::AdamW> optimizer_;
};

// Accuracy of `model` on every video of `data` (softmax averaged over its eval views), run on the device that
// holds the model's parameters. The tokenizer's random policy draws from a generator seeded by `seed`.
EvalResult evaluate(const RLTransformer& model, const VideoDataset& data, const TokenizerConfig& tokenizer,
                    int64_t batch_size = 32, uint64_t seed = 0);

// The device of a model's parameters (the CPU for a model without any).
Device device_of(const nn::Module& model);

// Clips [T, 3, H, W] (host) tokenized and packed for a model on `device`: on the CPU clip by clip
// (rlt/tokenizer.h); elsewhere stacked, uploaded once and tokenized there (rlt/batch_tokenizer.h). The two
// give the same tokens (tests/rlt/test_batch_tokenizer.cpp). drop: one generator per clip (random policy).
PackedClips tokenize_for(const std::vector<Tensor>& clips, const TokenizerConfig& tokenizer, std::vector<Generator>& drop,
                         Device device);

// Class probabilities for one clip [T, 3, S, S]: [classes].
std::vector<double> predict_clip(const RLTransformer& model, const Tensor& clip, const TokenizerConfig& tokenizer);

}  // namespace glance::rlt
