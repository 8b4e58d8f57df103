// glance demo: the main job. Trains the RLT transformer twice on the built-in dataset with the same
// settings, once with run-length tokenization and once dense (every tubelet kept), and ends with one
// JSON line comparing accuracy and training throughput.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "nn/atomic_file.h"
#include "nn/json.h"

namespace glance::cli {

namespace {

nn::Json run_json(const rlt::RunResult& r, bool with_kept) {
  nn::Json j = nn::Json::object();
  j.set("val_acc", r.val.accuracy);
  if (with_kept) j.set("kept_fraction", r.kept_fraction);
  j.set("clips_per_s", r.clips_per_s).set("train_seconds", r.seconds).set("final_train_loss", r.final_loss);
  return j;
}

}  // namespace

int run_demo(int argc, char** argv) {
  Args a("glance demo",
         "Train RLT and a dense baseline with the same settings on the built-in dataset (2-core CPU: a few\n"
         "minutes in all) and print one JSON line: accuracy, kept fraction, clips/s and the speedup.");
  add_model_options(a);
  add_tokenizer_options(a);
  add_data_options(a, 7200, 1024);
  add_optimizer_options(a, 4, 32, "1e-3");  // 4 epochs of 225 steps
  a.option("out", "runs/demo", "folder for the two metrics logs (rlt.metrics.jsonl, dense.metrics.jsonl)");
  a.flag("progress", true, "show progress bars");
  if (!a.parse(argc, argv)) return 0;

  rlt::TrainOptions o;
  o.device = device_from(a);
  o.model = model_from(a);
  o.model.attention_kernel = attention_kernel_for(a, o.device);
  // The metrics logs' folder is checked before any work: a run must not learn at its end that it cannot write.
  for (const char* log : {"/rlt.metrics.jsonl", "/dense.metrics.jsonl"}) nn::check_writable(a.str("out") + log, "out");
  Datasets data = datasets_from(a, o.model);
  o.model.classes = static_cast<int64_t>(data.train->class_names().size());
  optimizer_options_from(a, o);
  o.progress = a.on("progress");
  std::cout << "data: " << data.train->describe() << "\n";

  rlt::RunResult results[2];
  const rlt::DropPolicy policies[2] = {rlt::DropPolicy::RLT, rlt::DropPolicy::Dense};
  for (int k = 0; k < 2; ++k) {
    o.tokenizer = tokenizer_from(a, o.model);
    o.tokenizer.policy = policies[k];
    o.name = rlt::policy_name(policies[k]);
    o.metrics_path = a.str("out") + "/" + o.name + ".metrics.jsonl";
    std::cout << "== " << o.name << ": " << (k == 0 ? "run-length tokenization, tau " + a.str("tau") : "every tubelet kept")
              << "\n";
    rlt::Trainer trainer(o, *data.train, data.val.get());
    results[k] = trainer.run();
    std::cout << o.name << ": " << result_json(results[k]) << "\n";
  }

  nn::Json settings = nn::Json::object();
  settings.set("dataset", "builtin").set("device", o.device.str()).set("preset", a.str("preset")).set("model", nn::Json::parse(o.model.to_json()));
  settings.set("tau", a.number("tau")).set("steps", results[0].steps).set("batch_size", o.batch_size);
  settings.set("train_clips", data.train->size()).set("val_clips", data.val->size()).set("seed", a.integer("seed"));
  nn::Json out = nn::Json::object();
  out.set("demo", settings).set("rlt", run_json(results[0], true)).set("dense", run_json(results[1], false));
  out.set("speedup", results[0].clips_per_s / results[1].clips_per_s);
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace glance::cli
