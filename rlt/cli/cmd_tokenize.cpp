// glance tokenize: what run-length tokenization keeps of a folder of frames.
// glance generate: the built-in dataset written as PNG frames (root/<class>/<clip>/<frame>.png).
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "nn/json.h"
#include "rlt/clip_datasets.h"
#include "rlt/tokenizer.h"

namespace glance::cli {

int run_tokenize(int argc, char** argv) {
  Args a("glance tokenize",
         "Cut a folder of frames into clips (the consecutive full windows of F*I frames: clip k uses frames\n"
         "k*F*I + j*I, j < F), tokenize each and count what run-length tokenization keeps.");
  a.positional("FRAMES_DIR", "a folder of frames (PNG/JPG/BMP), sorted by name");
  a.option("frames-per-clip", "16", "F: frames per clip", Range::integers(1, rlt::ModelLimits::frames));
  a.option("interval", "1", "I: take every I-th frame", Range::integers(1, 10000));
  a.option("tau", "0.1", "keep a tubelet iff its static score is > tau", Range::numbers(0, 1000));
  a.option("patch", "16", "tubelet side in pixels", Range::integers(1, rlt::ModelLimits::image_size));
  a.option("tubelet", "2", "frames per tubelet", Range::integers(1, rlt::ModelLimits::frames));
  a.option("size", "0", "centre-crop and resize frames to size x size (0: keep the frames' size)", Range::integers(0, rlt::ModelLimits::image_size));
  a.option("compare", "adjacent", "adjacent (the paper) or anchor (the run's first tubelet)");
  a.flag("json", "print one JSON object instead of a line per clip");
  add_frame_limit_option(a);
  if (!a.parse(argc, argv)) return 0;

  rlt::ClipSampling sampling{.frames_per_clip = a.integer("frames-per-clip"), .interval = a.integer("interval")};
  rlt::TokenizerConfig t;
  t.tubelet = a.integer("tubelet");
  t.patch = a.integer("patch");
  t.tau = a.number("tau");
  t.compare = rlt::parse_compare_mode(a.str("compare"));
  const std::vector<Tensor> clips = rlt::clips_of_folder(a.arg("FRAMES_DIR"), sampling, a.integer("size"),
                                                           a.integer("max-frame-side"));
  int64_t tokens = 0, kept = 0, run_total = 0;
  for (size_t k = 0; k < clips.size(); ++k) {
    const rlt::TokenizedClip c = rlt::tokenize(clips[k], t);
    int64_t runs = 0;
    for (int32_t l : c.length) runs += l;
    tokens += c.grid_tokens(), kept += c.tokens(), run_total += runs;
    if (!a.on("json")) {
      std::cout << "clip " << k << ": grid " << nn::to_string(c.grid) << ", kept "
                << c.tokens() << " of " << c.grid_tokens() << " tokens ("
                << 100.0 * double(c.tokens()) / double(c.grid_tokens()) << "%), mean run length "
                << double(runs) / double(std::max<int64_t>(c.tokens(), 1)) << "\n";
    }
  }
  nn::Json j = nn::Json::object();
  j.set("clips", static_cast<int64_t>(clips.size())).set("tokens", tokens).set("kept", kept);
  j.set("kept_fraction", tokens > 0 ? double(kept) / double(tokens) : 0.0);
  j.set("mean_run_length", kept > 0 ? double(run_total) / double(kept) : 0.0);
  std::cout << j.dump() << "\n";
  return 0;
}

int run_generate(int argc, char** argv) {
  Args a("glance generate", "Write clips of the built-in dataset as PNG frames: OUT/<class>/clip_<i>/<frame>.png.");
  a.option("out", "data/builtin", "output folder");
  a.option("first", "0", "index of the first clip", Range::integers(0, 10000000));
  a.option("count", "16", "clips to write", Range::integers(1, 1000000));
  a.option("seed", "0", "dataset seed (glance train's training clips use 2*seed+1, validation 2*seed+2)", Range::integers(0, INT64_MAX));
  a.option("frames", "16", "frames per clip", Range::integers(2, rlt::ModelLimits::frames));
  a.option("size", "32", "frame side in pixels", Range::integers(8, rlt::ModelLimits::image_size));
  add_motion_options(a, "");
  if (!a.parse(argc, argv)) return 0;
  rlt::SyntheticVideoConfig c;
  c.count = a.integer("first") + a.integer("count");
  c.frames = a.integer("frames");
  c.size = a.integer("size");
  motion_options_into(a, c);
  c.seed = static_cast<uint64_t>(a.integer("seed"));
  rlt::SyntheticVideo video(c);
  video.write_frames(a.str("out"), a.integer("first"), a.integer("count"));
  std::cout << "wrote " << a.integer("count") << " clips of " << c.frames << " frames to " << a.str("out") << "\n";
  return 0;
}

}  // namespace glance::cli
