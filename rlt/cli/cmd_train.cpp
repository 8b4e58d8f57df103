// glance train / eval / predict.
#include <unistd.h>

#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/resume.h"
#include "cli/stop_signals.h"
#include "dist/world.h"
#include "nn/atomic_file.h"
#include "nn/json.h"
#include "nn/training_state.h"

namespace glance::cli {

namespace {
int train(const Args& a, dist::Communicator* world);
}  // namespace

int run_train(int argc, char** argv) {
  Args a("glance train", "Train the RLT video transformer and print one JSON line with the result.");
  add_model_options(a);
  add_tokenizer_options(a);
  add_data_options(a, 2048, 512);
  add_optimizer_options(a, 4, 32, "1e-3");
  a.option("save", "", "write the training state (model, optimizer, step, RNG) to this safetensors file at each "
                       "epoch's end, at the end and on SIGINT/SIGTERM (atomically: the old file or the new one)");
  a.option("save-every", "0", "> 0: with --save, also every this many steps", Range::integers(0, 1000000000000));
  a.option("load", "", "resume from a training state written by --save (bit-exact on the CPU; the metrics log "
                       "is continued from its step)");
  a.option("init-from", "", "start from this checkpoint's weights, e.g. one `glance convert` made from VideoMAE or "
                            "timm (its model config; a new head when its classes differ from the data's)");
  a.option("head-lr-scale", "1", "the head's learning rate over the others' (for a new head on --init-from weights)",
           Range::above(0, 1000));
  a.option("metrics", "runs/train.metrics.jsonl", "JSON Lines metrics log (one line per step)");
  a.option("eval-every", "0", "> 0: evaluate every this many epochs too", Range::integers(0, 1000000));
  a.flag("progress", true, "show a progress bar");
  a.option("stop-after", "0", "> 0: stop after this step, saving, as if interrupted (the schedule still spans "
                              "all the steps, so --load continues it)", Range::integers(0, 1000000000000));
  a.option("shard", "tokens", "with several ranks (mpirun -np N glance train): share each global batch out by "
                              "tokens (each rank about the same work) or by clips (each rank reads only its own)");
  a.option("dist-timeout", "300", "with several ranks: seconds a rank waits for the others before it stops the run, "
                                  "naming the ranks that did not answer (cover a checkpoint save and an evaluation)",
           Range::above(0, 1e6));
  a.option("bucket-mb", "4", "with several ranks: gradient bucket size in MB (all-reduced as backward fills them)",
           Range::above(0, 1e4));
  if (!a.parse(argc, argv)) return 0;

  // Under mpirun or srun: one rank of a data-parallel run. Without a launcher glance never calls MPI.
  const dist::Launch launch = dist::launch_from_environment();
  std::unique_ptr<dist::Communicator> world;
  if (launch.launched) world = dist::join_world(launch, a.number("dist-timeout"));
  if (world == nullptr || world->size() == 1) return train(a, world.get());
  // One write, so the ranks' lines do not interleave (a launcher passes each rank's output on as it comes).
  std::cerr << ("glance train: rank " + std::to_string(world->rank()) + " of " + std::to_string(world->size()) +
                ", pid " + std::to_string(::getpid()) + "\n");
  try {
    return train(a, world.get());
  } catch (const std::exception& e) {
    // The others would wait for this rank until their timeout: end them all now, naming the rank and the error.
    world->abort("glance train: rank " + std::to_string(world->rank()) + ": error: " + e.what() +
                 " (stopping all " + std::to_string(world->size()) + " ranks)");
  }
  return 1;  // not reached: abort ends every rank
}

namespace {

int train(const Args& a, dist::Communicator* world) {
  const bool writer = world == nullptr || world->rank() == 0;  // rank 0 prints and writes
  rlt::TrainOptions o;
  o.device = device_from(a);
  o.shard = dist::parse_shard_mode(a.str("shard"));  // checked in one process too
  if (world != nullptr && world->size() > 1) {
    o.world = world;
    o.bucket_bytes = static_cast<int64_t>(a.number("bucket-mb") * 1e6);
    // One GPU per rank: --device cuda means the rank's own, by its rank on this machine.
    if (!o.device.is_cpu() && a.str("device") == "cuda") o.device = Device::cuda(world->local_rank());
  }
  o.stop_at = a.integer("stop-after");
  o.save_path = a.str("save");
  o.metrics_path = a.str("metrics");
  o.save_every = a.integer("save-every");
  if (o.save_every > 0 && o.save_path.empty()) throw std::invalid_argument("--save-every needs --save FILE");
  o.load_path = a.str("load");
  o.init_from = a.str("init-from");
  o.head_lr_scale = a.number("head-lr-scale");
  if (!o.load_path.empty() && !o.init_from.empty()) {
    throw std::invalid_argument("--init-from starts a new run from a model's weights, --load continues a run: give one");
  }
  const bool resuming = !o.load_path.empty();
  rlt::RunConfig saved;
  if (!o.init_from.empty()) {
    // The weights' model, checked against the model options given (as for --load); the head follows the data.
    saved = rlt::read_run_config(o.init_from);
    o.model = model_to_resume(a, saved, o.init_from, o.device);
    if (a.given("attention-kernel") || a.given("precision")) o.model.attention_kernel = attention_kernel_for(a, o.device);
    o.tokenizer = tokenizer_options_over(a, o.model, saved.tokenizer);
  } else if (resuming) {
    // The checkpoint's config is validated, and the options checked against it, before anything is built.
    saved = rlt::read_run_config(o.load_path);
    o.model = model_to_resume(a, saved, o.load_path, o.device);
    if (a.given("attention-kernel") || a.given("precision")) o.model.attention_kernel = attention_kernel_for(a, o.device);
    o.tokenizer = tokenizer_options_over(a, o.model, saved.tokenizer);
  } else {
    o.model = model_from(a);
    o.model.attention_kernel = attention_kernel_for(a, o.device);
    o.tokenizer = tokenizer_from(a, o.model);
  }
  // Every output is checked before any work: a run must not learn at its end that it cannot save.
  if (!o.save_path.empty() && writer) nn::check_writable(o.save_path, "save");
  if (!o.metrics_path.empty() && writer) nn::check_writable(o.metrics_path, "metrics");
  Datasets data = datasets_from(a, o.model);
  if (resuming && data.train->class_names() != saved.class_names) {
    throw std::invalid_argument("the classes of " + data.train->describe() + " differ from those of the checkpoint '" +
                                o.load_path + "'");
  }
  o.model.classes = static_cast<int64_t>(data.train->class_names().size());
  optimizer_options_from(a, o);
  o.eval_every = a.integer("eval-every");
  o.progress = a.on("progress");
  o.name = rlt::policy_name(o.tokenizer.policy);
  if (writer) std::cout << "data: " << data.train->describe() << "\n";
  StopSignals signals;  // SIGINT / SIGTERM: finish the step, save, exit kExitStoppedBySignal
  o.stop_requested = &signals.requested();
  rlt::Trainer trainer(o, *data.train, data.val.get());
  if (writer) std::cout << "model: " << o.model.to_json() << " (" << trainer.model().parameter_count() << " parameters)\n";
  const rlt::RunResult r = trainer.run();
  if (writer) std::cout << result_json(r) << "\n";
  if (r.stopped_early && writer) {
    std::cerr << "glance train: stopped by signal " << signals.signal_number() << " after step " << r.last_step
              << (o.save_path.empty() ? " (no --save: nothing written)" : "; saved to " + o.save_path +
                                                                            " (continue with --load " + o.save_path + ")")
              << "\n";
  }
  return r.stopped_early ? kExitStoppedBySignal : 0;
}

}  // namespace

int run_eval(int argc, char** argv) {
  Args a("glance eval", "Evaluate a checkpoint written by glance train --save; prints one JSON line.");
  a.option("load", "", "the checkpoint (required)");
  add_data_options(a, 2048, 512);
  a.option("tau", "", "override the checkpoint's tau", Range::numbers(0, 1000));
  a.option("drop", "", "override the checkpoint's token policy (rlt, dense, random)");
  a.option("seed", "0", "seed of the built-in dataset (validation clips use seed 2*seed+2, as in train)", Range::integers(0, INT64_MAX));
  a.option("batch-size", "32", "clips per forward pass", Range::integers(1, 65536));
  a.option("device", "cpu", "cpu or cuda");
  if (!a.parse(argc, argv)) return 0;
  const Device device = device_from(a);
  if (a.str("load").empty()) throw std::invalid_argument("glance eval: --load FILE is required");
  rlt::RunConfig config = rlt::read_run_config(a.str("load"));
  config.model.attention_kernel = attention_kernel_on(config.model.attention_kernel, device);
  rlt::TokenizerConfig tok = config.tokenizer;
  if (a.given("tau")) tok.tau = a.number("tau");
  if (a.given("drop")) tok.policy = rlt::parse_drop_policy(a.str("drop"));
  rlt::RLTransformer model(config.model);
  nn::load_model_from_training_state(a.str("load"), model);
  model.to(device);

  std::unique_ptr<rlt::VideoDataset> data;
  if (!a.str("data").empty()) {
    data = std::make_unique<rlt::FolderClips>(a.str("data"), folder_from(a, config.model));
  } else {
    const uint64_t seed = static_cast<uint64_t>(a.integer("seed"));
    data = std::make_unique<rlt::SyntheticClips>(synthetic_from(a, config.model, a.integer("val-clips"), 2 * seed + 2));
  }
  if (data->class_names() != config.class_names) {
    throw std::invalid_argument("glance eval: the data's classes differ from the checkpoint's");
  }
  const rlt::EvalResult r = rlt::evaluate(model, *data, tok, a.integer("batch-size"));
  nn::Json j = nn::Json::object();
  j.set("checkpoint", a.str("load")).set("videos", r.videos).set("accuracy", r.accuracy).set("loss", r.loss);
  j.set("kept_fraction", r.kept_fraction).set("policy", rlt::policy_name(tok.policy)).set("tau", tok.tau);
  std::cout << j.dump() << "\n";
  return 0;
}

int run_predict(int argc, char** argv) {
  Args a("glance predict", "Class probabilities for the clips of a folder of frames (one JSON line).");
  a.positional("CLIP_DIR", "a folder of frames (PNG/JPG/BMP, sorted by name)");
  a.option("load", "", "the checkpoint (required)");
  a.option("interval", "1", "take every interval-th frame", Range::integers(1, 10000));
  a.option("tau", "", "override the checkpoint's tau", Range::numbers(0, 1000));
  a.option("drop", "", "override the checkpoint's token policy (rlt, dense, random): RLT at inference, or not, "
                       "whatever the model was trained with");
  a.option("device", "cpu", "cpu or cuda");
  add_frame_limit_option(a);
  if (!a.parse(argc, argv)) return 0;
  const Device device = device_from(a);
  if (a.str("load").empty()) throw std::invalid_argument("glance predict: --load FILE is required");
  rlt::RunConfig config = rlt::read_run_config(a.str("load"));
  if (a.given("tau")) config.tokenizer.tau = a.number("tau");
  if (a.given("drop")) config.tokenizer.policy = rlt::parse_drop_policy(a.str("drop"));
  config.model.attention_kernel = attention_kernel_on(config.model.attention_kernel, device);
  rlt::RLTransformer model(config.model);
  nn::load_model_from_training_state(a.str("load"), model);
  model.to(device);
  rlt::ClipSampling sampling{.frames_per_clip = config.model.frames, .interval = a.integer("interval")};
  const std::vector<Tensor> clips = rlt::clips_of_folder(a.arg("CLIP_DIR"), sampling, config.model.image_size,
                                                           a.integer("max-frame-side"));
  // Average the probabilities of the folder's clips.
  std::vector<double> mean(config.class_names.size(), 0.0);
  for (const Tensor& clip : clips) {
    const std::vector<double> p = rlt::predict_clip(model, clip, config.tokenizer);
    for (size_t c = 0; c < mean.size(); ++c) mean[c] += p[c] / double(clips.size());
  }
  size_t best = 0;
  nn::Json probs = nn::Json::object();
  for (size_t c = 0; c < mean.size(); ++c) {
    probs.set(config.class_names[c], mean[c]);
    if (mean[c] > mean[best]) best = c;
  }
  nn::Json j = nn::Json::object();
  j.set("clip_dir", a.arg("CLIP_DIR")).set("clips", static_cast<int64_t>(clips.size()));
  j.set("prediction", config.class_names[best]).set("probabilities", probs);
  j.set("policy", rlt::policy_name(config.tokenizer.policy));
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace glance::cli
