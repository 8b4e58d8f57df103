#include "rlt/clip_datasets.h"

#include <stdexcept>

namespace glance::rlt {

std::string SyntheticClips::describe() const {
  const SyntheticVideoConfig& c = video_.config();
  return "built-in synthetic video: " + std::to_string(c.count) + " clips of " + std::to_string(c.frames) + " x " +
         std::to_string(c.size) + " x " + std::to_string(c.size) + ", " + std::to_string(SyntheticVideo::kClasses) +
         " motion classes, objects " + std::to_string(c.objects) + ", pan " + std::to_string(c.pan) + ", noise " +
         std::to_string(c.noise) + ", seed " + std::to_string(c.seed);
}

FolderClips::FolderClips(const std::string& root, FolderOptions options) : data_(root), options_(options) {
  if (options_.eval_clips < 1) throw std::invalid_argument("FolderClips: eval_clips must be >= 1");
  // Every video must hold at least one clip: fail now, naming the folder, rather than mid-training.
  const int64_t need = clip_span(options_.sampling);
  for (int64_t i = 0; i < data_.size(); ++i) {
    const VideoEntry& e = data_.entry(i);
    if (static_cast<int64_t>(e.frames.size()) < need) {
      throw std::runtime_error("clip folder '" + e.dir + "' has " + std::to_string(e.frames.size()) +
                               " frames; a clip of " + std::to_string(options_.sampling.frames_per_clip) +
                               " frames every " + std::to_string(options_.sampling.interval) + " needs " +
                               std::to_string(need));
    }
  }
}

Tensor FolderClips::train_clip(int64_t i, Generator& gen) const {
  const VideoEntry& e = data_.entry(i);
  const auto indices = sample_clip_indices(static_cast<int64_t>(e.frames.size()), options_.sampling, gen, e.dir);
  ClipTransform t{.size = options_.size, .train = true, .min_scale = options_.min_scale, .flip = options_.flip};
  return transform_clip(load_clip(select_frames(e.frames, indices), options_.max_frame_side), t, &gen);
}

Tensor FolderClips::eval_clip(int64_t i, int64_t view) const {
  const VideoEntry& e = data_.entry(i);
  const auto all = eval_clip_indices(static_cast<int64_t>(e.frames.size()), options_.sampling, options_.eval_clips, e.dir);
  ClipTransform t{.size = options_.size, .train = false};
  return transform_clip(load_clip(select_frames(e.frames, all.at(view)), options_.max_frame_side), t, nullptr);
}

std::string FolderClips::describe() const {
  return "frame folders under " + data_.root() + ": " + std::to_string(data_.size()) + " videos, " +
         std::to_string(data_.class_names().size()) + " classes, clips of " +
         std::to_string(options_.sampling.frames_per_clip) + " frames every " +
         std::to_string(options_.sampling.interval) + ", " + std::to_string(options_.size) + " px";
}

std::vector<Tensor> clips_of_folder(const std::string& dir, const ClipSampling& sampling, int64_t size,
                                    int64_t max_side) {
  const std::vector<std::string> frames = list_frames(dir);
  const int64_t windows = num_windows(static_cast<int64_t>(frames.size()), sampling);
  if (windows == 0) {
    throw std::runtime_error("frame folder '" + dir + "' has " + std::to_string(frames.size()) +
                             " frames: fewer than one window of " + std::to_string(window(sampling)) +
                             " (frames per clip x interval)");
  }
  std::vector<Tensor> clips;
  for (int64_t k = 0; k < windows; ++k) {
    const std::vector<Image> images = load_clip(select_frames(frames, window_frame_indices(sampling, k)), max_side);
    if (size <= 0) {
      clips.push_back(normalize_clip(images));
    } else {
      clips.push_back(transform_clip(images, ClipTransform{.size = size, .train = false}, nullptr));
    }
  }
  return clips;
}

}  // namespace glance::rlt
