#include "rlt/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "dist/gradient_reducer.h"
#include "dist/world.h"
#include "nn/data/dataloader.h"
#include "nn/json.h"
#include "nn/loss.h"
#include "nn/metrics_log.h"
#include "nn/optim/schedule.h"
#include "nn/progress.h"
#include "nn/safetensors.h"
#include "nn/training_state.h"
#include "rlt/batch_tokenizer.h"
#include "rlt/init_from.h"
#include "tensor/counters.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace glance::rlt {

namespace {

// What the loader's thread hands over. On the CPU: the packed batch. On a GPU: the clips and their drop
// generators, tokenized by the main thread after one upload (device work stays on one thread).
struct ClipBatch {
  PackedClips packed;
  std::vector<Tensor> clips;
  std::vector<Generator> drop;
  Tensor labels;  // int64 [B] (with several ranks: this rank's clips only)
  // With several ranks and --shard tokens: max / mean tokens per rank as sharded, and for an equal split of clips.
  double imbalance_by_tokens = 0, imbalance_by_clips = 0;
};

// Each example of each epoch gets its own stretch of one Philox stream, so augmentation and random
// dropping depend only on (seed, epoch, index), never on thread timing.
Generator example_generator(uint64_t seed, uint64_t stream, uint64_t counter) {
  Generator gen(seed * 0x9E3779B97F4A7C15ull + stream);
  gen.set_state({gen.state().seed, counter << 24});
  return gen;
}

// "NaN", "+inf", "-inf": glibc prints a NaN as "nan" or "-nan" by its sign bit, which means nothing here.
std::string non_finite_text(double v) { return std::isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A checksum of the parameters' bits (FNV-1a over their float32 words): equal on every rank while the
// replicas are in step.
uint64_t parameter_checksum(const nn::Module& model) {
  uint64_t h = 1469598103934665603ull;
  for (const Tensor& p : model.parameters()) {
    const std::vector<float> values = ops::contiguous(p).to_vector<float>();
    for (float v : values) {
      uint32_t bits;
      std::memcpy(&bits, &v, sizeof(bits));
      h = (h ^ bits) * 1099511628211ull;
    }
  }
  return h;
}

}  // namespace

Device device_of(const nn::Module& model) {
  const std::vector<Tensor> params = model.parameters();
  return params.empty() ? Device::cpu() : params[0].device();
}

PackedClips tokenize_for(const std::vector<Tensor>& clips, const TokenizerConfig& tokenizer, std::vector<Generator>& drop,
                         Device device) {
  if (device.is_cpu()) {
    std::vector<TokenizedClip> tokenized;
    for (size_t i = 0; i < clips.size(); ++i) tokenized.push_back(tokenize(clips[i], tokenizer, &drop[i]));
    return pack_clips(tokenized);
  }
  // One upload of the whole batch (large copies go through pinned staging buffers), then the GPU tokenizer.
  return tokenize_batch(ops::to_device(ops::stack(clips, 0), device), tokenizer, &drop);
}

Trainer::Trainer(TrainOptions options, const VideoDataset& train, const VideoDataset* val)
    : options_(std::move(options)), train_(train), val_(val) {
  if (options_.model.classes != static_cast<int64_t>(train_.class_names().size())) {
    throw std::invalid_argument("train: the model has " + std::to_string(options_.model.classes) +
                                " classes but the data has " + std::to_string(train_.class_names().size()));
  }
  if (options_.tokenizer.tubelet != options_.model.tubelet || options_.tokenizer.patch != options_.model.patch) {
    throw std::invalid_argument("train: tokenizer and model disagree on the tubelet size");
  }
  manual_seed(options_.seed);  // parameter init and dropout draw from the default generator
  model_ = std::make_shared<RLTransformer>(options_.model);
  if (!options_.init_from.empty()) {
    if (!options_.load_path.empty()) throw std::invalid_argument("train: --init-from starts a new run, --load continues one: give one");
    const InitFromResult r = init_from(options_.init_from, *model_);
    std::cout << "initialised from " << options_.init_from
              << (r.new_head ? " (a new head for " + std::to_string(options_.model.classes) + " classes)" : "") << "\n";
  }
  model_->to(options_.device);  // initialised on the CPU (the same numbers on every device), then moved
  optimizer_ = std::make_unique<nn::AdamW>(with_head_lr_scale(
      nn::decay_groups(*model_, options_.lr, options_.weight_decay), *model_, options_.head_lr_scale));
}

RunResult Trainer::run() {
  const TrainOptions& o = options_;
  nn::LoaderOptions loader_options{.batch_size = o.batch_size, .shuffle = true, .drop_last = true, .seed = o.seed};
  int64_t epoch_now = 0;
  const int64_t dataset_size = train_.size();
  const int ranks = o.world != nullptr ? o.world->size() : 1;
  const int rank = o.world != nullptr ? o.world->rank() : 0;
  const bool distributed = ranks > 1;
  const bool writer = rank == 0;  // rank 0 alone writes the checkpoint, the metrics and the progress bar
  if (distributed && o.batch_size < ranks) {
    throw std::invalid_argument("train: --batch-size " + std::to_string(o.batch_size) + " is the global batch; it "
                                "must give each of the " + std::to_string(ranks) + " ranks at least one clip");
  }
  nn::DataLoader<ClipBatch> loader(dataset_size, loader_options, [&](const std::vector<int64_t>& all_idx) {
    ClipBatch batch;
    std::vector<int64_t> labels;
    auto load = [&](int64_t i) {
      const uint64_t counter = uint64_t(epoch_now) * uint64_t(dataset_size) + uint64_t(i);
      Generator augment = example_generator(o.seed, 1, counter);
      batch.clips.push_back(train_.train_clip(i, augment));
      batch.drop.push_back(example_generator(o.seed, 2, counter));
      labels.push_back(train_.label(i));
      // Checked here, on the loader's thread, where it is free: on a GPU the loss takes the labels unread.
      if (labels.back() < 0 || labels.back() >= o.model.classes) {
        throw std::out_of_range("train: clip " + std::to_string(i) + " of " + train_.describe() + " has label " +
                                std::to_string(labels.back()) + ", outside [0, " + std::to_string(o.model.classes) + ")");
      }
    };
    if (!distributed) {
      for (int64_t i : all_idx) load(i);
      if (o.device.is_cpu()) {  // tokenize here, overlapping the main thread's compute
        batch.packed = tokenize_for(batch.clips, o.tokenizer, batch.drop, o.device);
        batch.clips.clear();
      }
    } else if (o.shard == dist::ShardMode::Clips) {
      // This rank's positions of the global batch only: no other clip is read.
      const auto shards = dist::shard_by_clips(int64_t(all_idx.size()), ranks);
      for (int64_t position : shards[size_t(rank)]) load(all_idx[size_t(position)]);
      if (o.device.is_cpu()) {
        batch.packed = tokenize_for(batch.clips, o.tokenizer, batch.drop, o.device);
        batch.clips.clear();
      }
    } else {
      // Every clip of the global batch is read and tokenized (on the CPU) for its token count, the same on every
      // rank; the split by tokens then picks this rank's clips.
      for (int64_t i : all_idx) load(i);
      std::vector<TokenizedClip> tokenized;
      std::vector<int64_t> counts;
      for (size_t k = 0; k < batch.clips.size(); ++k) {
        Generator drop = batch.drop[k];  // a copy: a GPU tokenizes again from the same state
        tokenized.push_back(tokenize(batch.clips[k], o.tokenizer, &drop));
        counts.push_back(tokenized.back().tokens());
      }
      const auto shards = dist::shard_by_tokens(counts, ranks);
      batch.imbalance_by_tokens = dist::imbalance(dist::tokens_per_rank(counts, shards));
      batch.imbalance_by_clips = dist::imbalance(dist::tokens_per_rank(counts, dist::shard_by_clips(int64_t(counts.size()), ranks)));
      std::vector<TokenizedClip> mine;
      std::vector<Tensor> clips;
      std::vector<Generator> drop;
      std::vector<int64_t> my_labels;
      for (int64_t position : shards[size_t(rank)]) {
        const size_t k = size_t(position);
        mine.push_back(std::move(tokenized[k]));
        clips.push_back(batch.clips[k]), drop.push_back(batch.drop[k]), my_labels.push_back(labels[k]);
      }
      labels = my_labels;
      if (o.device.is_cpu()) {
        batch.packed = pack_clips(mine);
        batch.clips.clear(), batch.drop.clear();
      } else {
        batch.clips = clips, batch.drop = drop;
      }
    }
    batch.labels = ops::from_vector(labels);
    return batch;
  });
  const int64_t per_epoch = loader.batches_per_epoch();
  if (per_epoch == 0) {
    throw std::invalid_argument("train: " + std::to_string(dataset_size) + " clips make no batch of " +
                                std::to_string(o.batch_size));
  }
  const int64_t total = o.steps > 0 ? o.steps : o.epochs * per_epoch;
  const int64_t warmup = static_cast<int64_t>(o.warmup * double(total));

  int64_t step = 0;
  if (!o.load_path.empty()) {
    const nn::TrainingProgress p = nn::load_training_state(o.load_path, *model_, *optimizer_);
    step = p.step;
    if (p.ranks != ranks && writer) {
      // The state is replicated and the data order depends on the global batch alone, so another number of
      // ranks continues the same run; only the order of the gradient sums changes (not bit for bit).
      std::cout << "note: " << o.load_path << " was written by a run of " << p.ranks << " rank(s); continuing with "
                << ranks << " (the same batches and schedule; the sums round differently, so not bit for bit)\n";
    }
    if (step > total) {
      throw std::invalid_argument("checkpoint '" + o.load_path + "' is at step " + std::to_string(step) +
                                  " but this run has " + std::to_string(total) + " steps (--steps, or --epochs x " +
                                  std::to_string(per_epoch) + " batches)");
    }
    if (writer) std::cout << "resumed from " << o.load_path << " at step " << step << "\n";
  }
  const std::string config_json = run_config_json(o.model, o.tokenizer, train_.class_names());
  int64_t saved_step = -1;  // the step of the last save (an epoch's end and save_every can fall on one step)
  auto save = [&](int64_t epoch) {
    if (o.save_path.empty() || saved_step == step || !writer) return;
    nn::save_training_state(o.save_path, *model_, *optimizer_, {step, epoch, config_json, ranks});
    saved_step = step;
  };

  std::unique_ptr<nn::MetricsLog> log;
  if (!o.metrics_path.empty() && writer) {
    // A resumed run continues its log from the checkpoint's step, so the log reads as one run.
    log = o.load_path.empty() ? std::make_unique<nn::MetricsLog>(o.metrics_path)
                              : std::make_unique<nn::MetricsLog>(o.metrics_path, step);
  }
  std::ostream null_stream(nullptr);
  nn::ProgressBar bar(total - step, "clips", o.progress && writer ? std::cout : null_stream);

  std::unique_ptr<dist::BucketTransport> transport;
  std::unique_ptr<dist::GradientReducer> reducer;
  double wait_seconds = 0, imbalance_sum = 0, imbalance_by_clips_sum = 0;
  if (distributed) {
    transport = dist::make_bucket_transport(*o.world, o.device);
    reducer = std::make_unique<dist::GradientReducer>(model_->parameters(), *transport, o.bucket_bytes);
  }

  RunResult result;
  int64_t kept_tokens = 0, grid_tokens = 0, start_step = step;
  double recent_loss = 0;
  int64_t recent = 0;
  const auto start = std::chrono::steady_clock::now();
  double eval_seconds = 0;
  const int64_t memory_before = memory_stats().in_use;
  reset_peak_memory();
  int64_t forward_flops = 0, local_clips = 0;  // this rank's matmul work and clips (all of them in one process)
  std::unique_ptr<nn::LossScaler> scaler;
  if (o.loss_scaling) scaler = std::make_unique<nn::LossScaler>(o.loss_scaler);
  model_->train();
  int64_t last = o.stop_at > 0 ? std::min(o.stop_at, total) : total;
  for (int64_t epoch = step / per_epoch; step < last; ++epoch) {
    epoch_now = epoch;
    loader.start_epoch(epoch);
    int64_t skip = step - epoch * per_epoch;  // resuming in the middle of an epoch
    recent_loss = 0, recent = 0;
    while (step < last) {
      auto batch = loader.next();
      if (!batch) break;
      if (skip > 0) {
        --skip;
        continue;
      }
      if (!o.device.is_cpu()) {
        batch->packed = tokenize_for(batch->clips, o.tokenizer, batch->drop, o.device);
        // The labels go up now, while the GPU's queue is short, not inside the loss at the end of the forward
        // pass (an upload waits for the queue to drain).
        batch->labels = ops::to_device(batch->labels, o.device);
      }
      if (distributed) {
        // Drop path (and dropout) draw from the default generator. Each rank gets a stream of its own, a function
        // of (seed, rank, step) alone: the ranks' masks are independent, and a resumed run draws what the
        // uninterrupted one drew on every rank (the checkpoint holds rank 0's generator only).
        default_generator().set_state({o.seed * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull * uint64_t(rank + 1),
                                       uint64_t(step) << 40});
      }
      optimizer_->set_lr(nn::warmup_cosine_lr(step, total, warmup, o.lr, o.min_lr));
      const int64_t flops_before = matmul_flops();
      Tensor logits = model_->forward(batch->packed.tubelets, batch->packed.layout);
      forward_flops += matmul_flops() - flops_before;
      Tensor loss = nn::cross_entropy(logits, batch->labels, o.label_smoothing);
      // This rank's part of the global batch's mean: its clips' mean loss weighted by its share of the clips.
      if (distributed) loss = mul(loss, double(batch->labels.numel()) / double(o.batch_size));
      optimizer_->zero_grad();
      bool update = true;
      const Tensor backprop = scaler ? scaler->scale(loss) : loss;
      if (reducer) {
        {
          autograd::GradReadyHook hook(reducer->hook());  // full buckets start while backward goes on
          backprop.backward();
        }
        const auto arrive_start = std::chrono::steady_clock::now();
        o.world->arrive(step + 1);  // names a rank that died or hangs
        wait_seconds += seconds_since(arrive_start);
        reducer->finish();          // every rank now holds the sum of all the ranks' gradients
      } else {
        backprop.backward();
      }
      if (scaler) {
        update = scaler->unscale(model_->parameters());  // false: a gradient overflowed, skip this step
        scaler->update(update);
      }
      Tensor grad_norm;  // float64 [] on the device; read with the loss below
      if (update) {
        // Clipped on the device: reading the norm would wait for the whole backward pass.
        grad_norm = o.clip_grad > 0 ? nn::clip_grad_norm_on_device(model_->parameters(), o.clip_grad)
                                    : nn::grad_norm_on_device(model_->parameters());
        optimizer_->step();
      }
      ++step;

      // One read for the loss, the accuracy and the gradient norm (on a GPU each read waits for the queue).
      const nn::LossAndAccuracy readout = nn::read_loss_and_accuracy(loss, logits, batch->labels, grad_norm);
      double l = readout.loss, acc = readout.accuracy;
      const double norm = readout.grad_norm;  // of the summed gradients: the same on every rank
      int64_t b = batch->labels.numel();
      local_clips += b;
      int64_t step_tokens = batch->packed.layout.total_tokens(), step_grid = batch->packed.grid_tokens;
      bool stop = o.stop_requested != nullptr && o.stop_requested->load();
      double step_imbalance = 1;
      if (distributed) {
        // The global batch's loss, accuracy and tokens from every rank's part (summed in rank order), and one
        // decision to stop: a signal that reached one rank stops them all after this step.
        constexpr size_t kFields = 6;
        const std::vector<double> all = o.world->allgather(
            {l, acc * double(b), double(b), double(step_tokens), double(step_grid), stop ? 1.0 : 0.0},
            "the step's loss exchange");
        l = 0, b = 0, step_tokens = 0, step_grid = 0, stop = false;
        double hits = 0;
        std::vector<int64_t> rank_tokens;
        for (int r = 0; r < ranks; ++r) {
          const double* f = all.data() + size_t(r) * kFields;
          l += f[0], hits += f[1], b += int64_t(f[2]), step_tokens += int64_t(f[3]), step_grid += int64_t(f[4]);
          stop = stop || f[5] != 0;
          rank_tokens.push_back(int64_t(f[3]));
        }
        acc = hits / double(b);
        step_imbalance = dist::imbalance(rank_tokens);
        imbalance_sum += step_imbalance;
        imbalance_by_clips_sum += batch->imbalance_by_clips;
      }
      kept_tokens += step_tokens;
      grid_tokens += step_grid;
      result.clips += b;
      recent_loss += l, ++recent;
      bar.update(step - start_step, b, l, acc);
      if (log) {
        const double elapsed = seconds_since(start) - eval_seconds;
        nn::Json line = nn::Json::object();
        line.set("run", o.name).set("step", step).set("epoch", epoch).set("loss", l).set("accuracy", acc)
            .set("lr", optimizer_->groups()[0].lr)
            .set("tokens", step_tokens)
            .set("kept_fraction", double(step_tokens) / double(step_grid))
            .set("clips_per_s", double(result.clips) / std::max(elapsed, 1e-9));
        if (scaler) line.set("loss_scale", scaler->scale_value()).set("skipped", !update);
        if (distributed) line.set("ranks", ranks).set("imbalance", step_imbalance);
        log->write(line);
      }
      // A NaN or infinity reaches every weight within a step or two: stop here, before any save, so the last
      // checkpoint written stays the last good state (the metrics log keeps this step's line, its loss null).
      if (!std::isfinite(l) || !std::isfinite(norm)) {
        throw NonFiniteTraining("step " + std::to_string(step) + ": the " +
                                (!std::isfinite(l) ? "loss is " + non_finite_text(l) : "gradient norm is " + non_finite_text(norm)) +
                                "; training stopped without saving" +
                                (o.save_path.empty() ? "" : " (" + o.save_path + " keeps the last good state)"));
      }
      if (o.save_every > 0 && step % o.save_every == 0) save(step / per_epoch);
      if (stop) {
        result.stopped_early = true;
        last = step;  // the save below the loop writes this step
      }
    }
    const bool epoch_done = step % per_epoch == 0;
    if (epoch_done) save(epoch + 1);
    if (val_ != nullptr && o.eval_every > 0 && epoch_done && (epoch + 1) % o.eval_every == 0 && step < last) {
      const auto eval_start = std::chrono::steady_clock::now();
      const EvalResult v = evaluate(*model_, *val_, o.tokenizer, 32, o.seed);
      model_->train();
      eval_seconds += seconds_since(eval_start);
      if (log) log->write(nn::Json::object().set("run", o.name).set("step", step).set("epoch", epoch).set("val_acc", v.accuracy).set("val_loss", v.loss));
    }
  }
  bar.finish();
  result.seconds = seconds_since(start) - eval_seconds;
  result.steps = step - start_step;
  result.last_step = step;
  result.clips_per_s = double(result.clips) / std::max(result.seconds, 1e-9);
  result.kept_fraction = grid_tokens > 0 ? double(kept_tokens) / double(grid_tokens) : 0.0;
  result.final_loss = recent > 0 ? recent_loss / double(recent) : 0.0;
  result.parameters = model_->parameter_count();
  result.step_ms = result.steps > 0 ? 1000.0 * result.seconds / double(result.steps) : 0.0;
  result.forward_gflop_per_clip = local_clips > 0 ? double(forward_flops) / double(local_clips) / 1e9 : 0.0;
  result.peak_memory_mb = double(memory_stats().peak - memory_before) / 1e6;
  if (scaler) result.loss_scale = scaler->scale_value(), result.skipped_steps = scaler->skipped_steps();
  if (distributed) {
    // The replicas must have stayed identical: a difference is a bug, and no checkpoint is written from it.
    const uint64_t sum = parameter_checksum(*model_);
    const std::vector<double> all = o.world->allgather({double(sum >> 32), double(sum & 0xffffffffu)}, "the replica check");
    for (int r = 1; r < ranks; ++r) {
      if (all[size_t(2 * r)] != all[0] || all[size_t(2 * r + 1)] != all[1]) {
        throw std::runtime_error("train: the parameters of rank " + std::to_string(r) + " differ from rank 0's after step " +
                                 std::to_string(step) + "; nothing saved");
      }
    }
    ParallelResult& p = result.parallel;
    const double steps = std::max(1.0, double(result.steps));
    p.ranks = ranks;
    p.shard = dist::shard_mode_name(o.shard);
    p.transport = transport->name();
    p.imbalance = imbalance_sum / steps;
    if (o.shard == dist::ShardMode::Tokens) p.imbalance_by_tokens = p.imbalance, p.imbalance_by_clips = imbalance_by_clips_sum / steps;
    p.comm_ms_per_step = 1000.0 * reducer->communication_seconds() / steps;
    p.wait_ms_per_step = 1000.0 * wait_seconds / steps;
    p.allreduce_bytes_per_step = reducer->bytes_per_step();
    p.buckets = int64_t(reducer->plan().buckets.size());
    p.buckets_started_in_backward = double(reducer->buckets_started_in_backward()) / (steps * double(p.buckets));
  }
  save(step / per_epoch);
  if (val_ != nullptr && step == total) {
    result.val = evaluate(*model_, *val_, o.tokenizer, 32, o.seed);
    if (log) {
      log->write(nn::Json::object().set("run", o.name).set("step", step).set("val_acc", result.val.accuracy)
                     .set("val_loss", result.val.loss).set("val_kept_fraction", result.val.kept_fraction));
    }
  }
  return result;
}

EvalResult evaluate(const RLTransformer& model_const, const VideoDataset& data, const TokenizerConfig& tokenizer,
                    int64_t batch_size, uint64_t seed) {
  auto& model = const_cast<RLTransformer&>(model_const);
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  EvalResult r;
  const int64_t views = data.eval_views(), n = data.size(), classes = model.config.classes;
  std::vector<double> probs(static_cast<size_t>(n * classes), 0.0);
  int64_t kept = 0, grid = 0;
  // Work items: (video, view) pairs, batched.
  const int64_t items = n * views;
  for (int64_t begin = 0; begin < items; begin += batch_size) {
    const int64_t end = std::min(items, begin + batch_size);
    std::vector<Tensor> clips;
    std::vector<Generator> drop;
    for (int64_t k = begin; k < end; ++k) {
      clips.push_back(data.eval_clip(k / views, k % views));
      drop.push_back(example_generator(seed, 3, uint64_t(k)));
    }
    const PackedClips packed = tokenize_for(clips, tokenizer, drop, device_of(model));
    kept += packed.layout.total_tokens(), grid += packed.grid_tokens;
    const std::vector<float> p = ops::softmax(model.forward(packed.tubelets, packed.layout), -1).to_vector<float>();  // [b, classes]
    const float* pp = p.data();
    for (int64_t k = begin; k < end; ++k) {
      for (int64_t c = 0; c < classes; ++c) probs[(k / views) * classes + c] += pp[(k - begin) * classes + c] / double(views);
    }
  }
  int64_t hits = 0;
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c) best = probs[i * classes + c] > probs[i * classes + best] ? c : best;
    hits += best == data.label(i);
    loss -= std::log(std::max(probs[i * classes + data.label(i)], 1e-12));
  }
  r.videos = n;
  r.accuracy = n > 0 ? double(hits) / double(n) : 0.0;
  r.loss = n > 0 ? loss / double(n) : 0.0;
  r.kept_fraction = grid > 0 ? double(kept) / double(grid) : 0.0;
  model.train(was_training);
  return r;
}

std::vector<double> predict_clip(const RLTransformer& model_const, const Tensor& clip, const TokenizerConfig& tokenizer) {
  auto& model = const_cast<RLTransformer&>(model_const);
  model.eval();
  autograd::NoGradGuard no_grad;
  std::vector<Generator> drop{Generator(0)};
  const PackedClips packed = tokenize_for({clip}, tokenizer, drop, device_of(model));
  const std::vector<float> p = ops::softmax(model.forward(packed.tubelets, packed.layout), -1).to_vector<float>();
  return std::vector<double>(p.begin(), p.end());
}

}  // namespace glance::rlt
