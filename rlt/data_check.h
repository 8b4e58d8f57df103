// Checking a frame-folder dataset (root/<class>/<clip>/<frames>, rlt/frames.h) before a run uses it: a clip too
// short for the sampling, a frame that is not a readable image (or has an absurd size) or a frame whose size
// differs from its clip's first would otherwise stop training when a batch first meets it, possibly hours in.
// Only the files' headers are read (no frame is decoded), so a pass costs one small read per frame.
//
//   glance check-data root --frames-per-clip 16 --interval 4      (glance train --data runs it first too)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rlt/frames.h"

namespace glance::rlt {

struct DataCheck {
  int64_t classes = 0, clips = 0, frames = 0;
  int64_t problem_count = 0;
  std::vector<std::string> problems;  // the first ones, each naming its file or folder
};

// Throws std::runtime_error for a layout that is not a dataset at all (no class folders, an empty class or
// clip folder: FrameFolderDataset's errors); everything else is collected, up to `max_listed` problems listed.
DataCheck check_frame_folders(const std::string& root, const ClipSampling& sampling, int64_t max_listed = 20);

}  // namespace glance::rlt
