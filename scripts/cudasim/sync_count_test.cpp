// How often one GPU training step makes the host wait for the device, counted under the emulator (sim.h's
// HostWaits): every wait drains the GPU's queue, so the host cannot run ahead and queue the next kernels
// while the GPU computes. Emulator-only (it reads the emulator's counters); built into test_sim.
//
//   OMP_NUM_THREADS=1 scripts/cudasim/gen/test_sim --gtest_filter='SimHostWaits.*'
//
// Steps 3..6 of a run minus steps 3..4 of another isolate the steady state (the first steps also create the
// cuBLAS handle, the pinned staging buffers and the optimizer's moments).
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>

#include "autograd/functions.h"
#include "rlt/clip_datasets.h"
#include "rlt/trainer.h"
#include "sim.h"

namespace {

using namespace glance;
using namespace glance::rlt;

struct Waits {
  int64_t h2d = 0, d2h = 0, d2d = 0, memset = 0, device = 0, stream = 0, event = 0;
  int64_t total() const { return h2d + d2h + d2d + memset + device + stream + event; }
  Waits operator-(const Waits& o) const {
    return {h2d - o.h2d, d2h - o.d2h, d2d - o.d2d, memset - o.memset, device - o.device, stream - o.stream,
            event - o.event};
  }
};

Waits now() {
  const sim::HostWaits& w = sim::host_waits();
  return {w.memcpy_h2d, w.memcpy_d2h, w.memcpy_d2d, w.memset, w.device_sync, w.stream_sync, w.event_sync};
}

// The host waits during `steps` training steps of an RLT model of `depth` blocks on "cuda".
Waits waits_of_run(int64_t steps, int64_t depth, const std::string& kernel) {
  SyntheticVideoConfig data;
  data.count = 64, data.frames = 8, data.size = 32, data.object_size = 8, data.speed = 2, data.seed = 3;
  SyntheticClips train(data);
  TrainOptions o;
  o.device = Device::cuda();
  o.model.frames = 8, o.model.image_size = 32, o.model.tubelet = 2, o.model.patch = 8, o.model.classes = 8;
  o.model.dim = 32, o.model.depth = depth, o.model.heads = 2, o.model.attention_kernel = kernel;
  o.tokenizer.tubelet = 2, o.tokenizer.patch = 8, o.tokenizer.tau = 0.1;
  o.batch_size = 16, o.progress = false, o.steps = steps;
  Trainer trainer(o, train, nullptr);
  const Waits before = now();
  trainer.run();
  return now() - before;
}

TEST(SimHostWaits, PerTrainingStep) {
  for (int64_t depth : {2, 4}) {
    const Waits w = waits_of_run(6, depth, "fused") - waits_of_run(2, depth, "fused");  // 4 steady steps
    std::printf("[ info ] depth %lld, fused attention: host waits per training step: %.2f (uploads %.2f, downloads "
                "%.2f, d2d copies %.2f, memsets %.2f, device/stream/event syncs %.2f/%.2f/%.2f)\n",
                static_cast<long long>(depth), w.total() / 4.0, w.h2d / 4.0, w.d2h / 4.0, w.d2d / 4.0,
                w.memset / 4.0, w.device / 4.0, w.stream / 4.0, w.event / 4.0);
    EXPECT_GT(w.total(), 0) << "the step reads its loss at least";
    // 6 today (docs/08-cuda.md lists them): a new wait in the step fails here and gets looked at.
    EXPECT_LE(w.total(), 4 * 6) << "a training step waits more often than the 6 times docs/08 lists";
  }
}

// The autograd index ops given a host index for a GPU tensor: checked on the host, uploaded once, and that copy
// reused by the backward; nothing read back. (A device index with IndexCheck::Bounds is read back once: that is
// the check's documented cost, counted here too, so that a change to either shows.)
TEST(SimHostWaits, IndexOpsUploadAHostIndexOnceAndReadNothingBack) {
  const Device gpu = Device::cuda();
  const Tensor index = ops::from_vector(std::vector<int64_t>{2, 0, 2, 1, 0, 0, 2, 1}, {2, 4});
  const Tensor rows = ops::from_vector(std::vector<int64_t>{2, 0, 2});
  Tensor x = ops::to_device(ops::ones({3, 4}), gpu), src = ops::to_device(ops::ones({2, 4}), gpu);
  x.set_requires_grad(), src.set_requires_grad();
  ops::sum(x).item();  // warm up: the reduction's first use may allocate
  struct Case { const char* op; std::function<Tensor()> run; };
  const Case cases[] = {
      {"index_select", [&] { return glance::index_select(x, 0, rows); }},
      {"gather", [&] { return glance::gather(x, 0, index); }},
      {"scatter_add", [&] { return glance::scatter_add(x, 0, index, src); }},
      {"gather, AlreadyChecked", [&] { return glance::gather(x, 0, index, ops::IndexCheck::AlreadyChecked); }}};
  for (const Case& c : cases) {
    const Tensor out = c.run();
    const Tensor seed = ops::to_device(ops::ones(out.shape()), gpu);  // uploaded before counting
    const Waits before = now();
    const Tensor again = c.run();
    again.backward(seed);
    const Waits w = now() - before;
    EXPECT_EQ(w.d2h, 0) << c.op << ": the index was read back";
    EXPECT_EQ(w.h2d, 1) << c.op << ": the index went up " << w.h2d << " times (once expected, for forward and backward)";
  }
  // A device index with the default check: read back once, for the check, and nothing goes up.
  const Tensor on_gpu = ops::to_device(index, gpu);
  const Waits before = now();
  glance::gather(x, 0, on_gpu);
  const Waits w = now() - before;
  EXPECT_EQ(w.d2h, 1);
  EXPECT_EQ(w.h2d, 0);
}

}  // namespace
