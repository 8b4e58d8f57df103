// SyntheticVideo: the built-in video task for the RLT demo. No download: clip i is a pure function of
// (seed, i), so the dataset is deterministic and thread-safe: the same clip on any thread, in any order.
//
// Each clip is `frames` RGB frames of size x size pixels: one or more bright, filled shapes moving over a
// static, textured background. The class is the MOTION, never the look of a single frame:
//
//   0 right, 1 left, 2 down, 3 up   translate at `speed` px/frame
//   4 grow, 5 shrink                the side goes steadily from 0.5x to 1.5x its size (or back)
//   6 rotate                        a non-symmetric shape (triangle, L, bar) spins about its centre
//   7 bounce                        translates along a random axis, reverses at the middle of the clip
//
// Why this is a good RLT testbed: with pan = 0 and noise = 0 the background is bit-identical in every
// frame, so Run-Length Tokenization drops every tubelet the object(s) never touch; `objects` and
// `object_size` set how much of the frame moves; `pan` (camera motion) and `noise` (sensor noise) are the
// two ways real video defeats RLT, each a knob here. See docs/notes-synthetic.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/data/dataset.h"
#include "rlt/image.h"
#include "tensor/tensor.h"

namespace glance::rlt {

struct SyntheticVideoConfig {
  int64_t count = 2048;      // clips
  int64_t frames = 16;       // frames per clip, >= 2
  int64_t size = 64;         // H = W, >= 8
  int64_t objects = 1;       // moving objects per clip, all doing the clip's motion
  int64_t object_size = 14;  // pixels, typical side of an object (each clip jitters it by +-15%)
  double speed = 2.0;        // pixels per frame (translate, bounce; the rotation's edge speed)
  double pan = 0.0;          // camera pan, pixels per frame, in a random direction per clip (background)
  double noise = 0.0;        // sensor noise std in grey levels, fresh per pixel, channel and frame
  uint64_t seed = 0;
};

class SyntheticVideo {
 public:
  static constexpr int64_t kClasses = 8;

  // Throws std::invalid_argument naming the field and its value when a field is out of range or the
  // motion cannot stay inside the frame (e.g. speed * (frames - 1) plus the object is wider than size).
  explicit SyntheticVideo(SyntheticVideoConfig config);

  const SyntheticVideoConfig& config() const { return config_; }
  int64_t size() const { return config_.count; }
  // Balanced: label(i) = a per-seed permutation of the classes applied to i % kClasses, so any
  // kClasses consecutive clips hold every class once.
  int64_t label(int64_t i) const;
  static const std::vector<std::string>& class_names();  // {"right", "left", ..., "bounce"}

  // The frames of clip i: `frames` images of [size, size, 3] uint8.
  std::vector<Image> clip(int64_t i) const;
  // The same clip as the model reads it: float32 [T, 3, size, size], ImageNet-normalised
  // ((x / 255 - mean) / std, mean {0.485, 0.456, 0.406}, std {0.229, 0.224, 0.225}).
  Tensor clip_tensor(int64_t i) const;
  // Clip i's background as seen in frame t: no objects, no noise. With pan = 0 it is the same for all t.
  // (Teaching and tests: the pixels where clip(i)[t] differs from it are exactly the objects, plus noise.)
  Image background(int64_t i, int64_t t = 0) const;

  // Writes clips [first, first + count) as root/<class_name>/clip_<%05d i>/<%05d frame>.png (folders are
  // created; each PNG is written atomically by save_png).
  void write_frames(const std::string& root, int64_t first, int64_t count) const;

 private:
  void check_index(int64_t i) const;

  SyntheticVideoConfig config_;
  int64_t class_of_residue_[kClasses];  // label(i) = class_of_residue_[i % kClasses]
};

// The dataset the trainer reads: Example{clip_tensor(i) [T, 3, S, S], label(i)}. get() is const and
// touches no shared mutable state, so the DataLoader may call it from its background thread.
class SyntheticVideoDataset : public nn::Dataset {
 public:
  explicit SyntheticVideoDataset(SyntheticVideoConfig config) : video_(config) {}
  int64_t size() const override { return video_.size(); }
  nn::Example get(int64_t index) const override { return {video_.clip_tensor(index), video_.label(index)}; }
  const SyntheticVideo& video() const { return video_; }

 private:
  SyntheticVideo video_;
};

}  // namespace glance::rlt
