// glance check-data: a frame-folder dataset checked before a run uses it (rlt/data_check.h).
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "nn/json.h"
#include "rlt/data_check.h"

namespace glance::cli {

int run_check_data(int argc, char** argv) {
  Args a("glance check-data",
         "Check a dataset root/<class>/<clip>/<frames> before training on it: every clip long enough for the\n"
         "sampling, every frame a readable image of its clip's size (a regular file, no side over --max-frame-side,\n"
         "a PNG's chunk CRCs intact). Prints one JSON line; each problem goes to stderr, and any problem makes the\n"
         "exit status 1.");
  a.positional("DATA_DIR", "the dataset's root folder (as given to glance train --data)");
  a.option("frames-per-clip", "16", "F: frames per clip (the model's frames)", Range::integers(1, rlt::ModelLimits::frames));
  a.option("interval", "4", "I: take every I-th frame (as glance train --interval)", Range::integers(1, 10000));
  a.option("list", "20", "list at most this many problems", Range::integers(1, 1000000));
  add_frame_limit_option(a);
  if (!a.parse(argc, argv)) return 0;
  const rlt::ClipSampling sampling{.frames_per_clip = a.integer("frames-per-clip"), .interval = a.integer("interval")};
  const rlt::DataCheck check = rlt::check_frame_folders(a.arg("DATA_DIR"), sampling, a.integer("list"),
                                                           a.integer("max-frame-side"));
  for (const std::string& problem : check.problems) std::cerr << "problem: " << problem << "\n";
  if (check.problem_count > static_cast<int64_t>(check.problems.size())) {
    std::cerr << "... and " << check.problem_count - static_cast<int64_t>(check.problems.size()) << " more\n";
  }
  nn::Json j = nn::Json::object();
  j.set("root", a.arg("DATA_DIR")).set("classes", check.classes).set("clips", check.clips).set("frames", check.frames);
  j.set("problems", check.problem_count);
  std::cout << j.dump() << "\n";
  return check.problem_count == 0 ? 0 : 1;
}

}  // namespace glance::cli
