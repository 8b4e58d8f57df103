// The two sources of clips behind VideoDataset:
//   SyntheticClips  the built-in generator (rlt/synthetic_video.h); no augmentation (a flip would turn
//                   "right" into "left")
//   FolderClips     root/<class>/<clip>/<frames>: sampled clips (frames per clip, interval), random resized
//                   crop + flip for training, centre crop and evenly spaced clips for evaluation
#pragma once
#include "rlt/frames.h"
#include "rlt/synthetic_video.h"
#include "rlt/transforms.h"
#include "rlt/video_dataset.h"

namespace glance::rlt {

class SyntheticClips : public VideoDataset {
 public:
  explicit SyntheticClips(SyntheticVideoConfig config) : video_(config) {}
  int64_t size() const override { return video_.size(); }
  int64_t label(int64_t i) const override { return video_.label(i); }
  std::vector<std::string> class_names() const override { return SyntheticVideo::class_names(); }
  Tensor train_clip(int64_t i, Generator&) const override { return video_.clip_tensor(i); }
  Tensor eval_clip(int64_t i, int64_t) const override { return video_.clip_tensor(i); }
  std::string describe() const override;
  const SyntheticVideo& video() const { return video_; }

 private:
  SyntheticVideo video_;
};

struct FolderOptions {
  ClipSampling sampling;
  int64_t size = 224;       // frames become size x size
  double min_scale = 0.5;   // random resized crop's smallest area fraction (training)
  bool flip = true;         // random horizontal flip (training)
  int64_t eval_clips = 1;   // clips per video at evaluation (softmax averaged)
  int64_t max_frame_side = kDefaultMaxFrameSide;  // larger frames are refused from their header (load_image)
};

class FolderClips : public VideoDataset {
 public:
  FolderClips(const std::string& root, FolderOptions options);
  int64_t size() const override { return data_.size(); }
  int64_t label(int64_t i) const override { return data_.entry(i).label; }
  std::vector<std::string> class_names() const override { return data_.class_names(); }
  Tensor train_clip(int64_t i, Generator& gen) const override;
  int64_t eval_views() const override { return options_.eval_clips; }
  Tensor eval_clip(int64_t i, int64_t view) const override;
  std::string describe() const override;

 private:
  FrameFolderDataset data_;
  FolderOptions options_;
};

// A folder of frames as clips, for `glance tokenize` and `glance predict`: the consecutive full windows of
// F*I frames (window k uses frames k*F*I + j*I, j < F), each centre-cropped and resized to `size`
// (size <= 0: keep the frames' size; they must then be square or the tokenizer's grid must fit them). Frames
// over `max_side` pixels per side are refused from their header (load_image).
std::vector<Tensor> clips_of_folder(const std::string& dir, const ClipSampling& sampling, int64_t size,
                                    int64_t max_side = kDefaultMaxFrameSide);

}  // namespace glance::rlt
