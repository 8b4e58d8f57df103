// Checking a frame-folder dataset (root/<class>/<clip>/<frames>, rlt/frames.h) before a run uses it: a clip too
// short for the sampling, a frame that is not a readable image (a FIFO or device, a damaged PNG, a size over
// the frame-size limit) or a frame whose size differs from its clip's first would otherwise stop training when
// a batch first meets it, possibly hours in. No frame is decoded: a pass reads each frame's header, and each
// PNG once through for its CRCs.
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
// Each frame gets the checks load_image makes before decoding (image_size): a regular file, a readable header,
// a size within `max_side` pixels per side, and for a PNG every chunk's CRC.
DataCheck check_frame_folders(const std::string& root, const ClipSampling& sampling, int64_t max_listed = 20,
                              int64_t max_side = kDefaultMaxFrameSide);

}  // namespace glance::rlt
