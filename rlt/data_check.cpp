#include "rlt/data_check.h"

#include <exception>

namespace glance::rlt {

DataCheck check_frame_folders(const std::string& root, const ClipSampling& sampling, int64_t max_listed,
                              int64_t max_side) {
  const FrameFolderDataset data(root);  // the layout: throws naming the folder
  DataCheck check;
  check.classes = static_cast<int64_t>(data.class_names().size());
  check.clips = data.size();
  auto problem = [&](const std::string& text) {
    if (check.problem_count++ < max_listed) check.problems.push_back(text);
  };
  const int64_t needed = clip_span(sampling);
  for (int64_t i = 0; i < data.size(); ++i) {
    const VideoEntry& video = data.entry(i);
    check.frames += static_cast<int64_t>(video.frames.size());
    if (static_cast<int64_t>(video.frames.size()) < needed) {
      problem("clip folder '" + video.dir + "' has " + std::to_string(video.frames.size()) + " frames; a clip of " +
              std::to_string(sampling.frames_per_clip) + " frames every " + std::to_string(sampling.interval) +
              " needs " + std::to_string(needed));
    }
    std::pair<int64_t, int64_t> first_size{0, 0};
    for (const std::string& frame : video.frames) {
      std::pair<int64_t, int64_t> size;
      try {
        size = image_size(frame, max_side);  // no decoding; names the file and why it cannot be read
      } catch (const std::exception& e) {
        problem(e.what());
        continue;
      }
      if (first_size.first == 0) {
        first_size = size;
      } else if (size != first_size) {
        problem("frame '" + frame + "' is " + std::to_string(size.first) + " x " + std::to_string(size.second) +
                " but the first readable frame of its clip is " + std::to_string(first_size.first) + " x " +
                std::to_string(first_size.second));
      }
    }
  }
  return check;
}

}  // namespace glance::rlt
