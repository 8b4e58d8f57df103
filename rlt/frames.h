// Videos as folders of frames: listing them, the labelled dataset layout, and which frames make a clip.
//
// A video is a folder of image files (PNG, JPEG or BMP), one per frame, in the order of their file names:
//
//   clip/00001.png  clip/00002.png  ...         (what `ffmpeg -i in.mp4 clip/%05d.png` writes)
//
// A labelled dataset is a root folder with one subfolder per class and one folder per video inside it:
//
//   root/<class>/<clip>/<frames>                 e.g. root/juggling/v_001/00001.png
//
// Classes are the subfolder names sorted (byte order); a class's label is its index in that list.
//
// Clip sampling picks F frames spaced I apart (F = frames_per_clip, I = interval): a clip spans
// (F-1)*I + 1 frames of the video. Training draws one clip at a random start; evaluation takes several
// evenly spaced clips; the run-length tokenizer's pipeline reads consecutive windows of F*I frames.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rlt/image.h"
#include "tensor/random.h"

namespace glance::rlt {

// ---- one video: a folder of frames ----

// The frame files of `dir` (.png .jpg .jpeg .bmp, any letter case), full paths sorted by file name in
// byte order. Byte order is numeric order only for zero-padded names: 00002.png < 00010.png, but
// 2.png > 10.png; write frames with %05d (or any fixed width). Other files (.txt, ...), subfolders and
// hidden files (names starting with '.', such as macOS "._x.png") are ignored. Something named like a frame
// that is not a regular file (a FIFO, a device, a dangling link) is listed all the same, so that reading it
// fails naming it (load_image) rather than leaving a silent gap in the video. Throws std::runtime_error
// naming the folder when it is not a folder or holds no frames.
std::vector<std::string> list_frames(const std::string& dir);

// Reads the frames of one clip (load_image, with its frame-size limit `max_side`). All must have the same
// size; otherwise throws naming the first file whose size differs from the first frame's, with both sizes.
// Empty `frame_paths` is an error.
std::vector<Image> load_clip(const std::vector<std::string>& frame_paths, int64_t max_side = kDefaultMaxFrameSide);

// ---- many videos: root/<class>/<clip>/<frames> ----

struct VideoEntry {
  std::string dir;                  // the clip folder
  std::string class_name;           // its parent folder's name
  int64_t label = 0;                // index of class_name in class_names()
  std::vector<std::string> frames;  // list_frames(dir)
};

// Scans the whole tree once, in the constructor (file names only; no image is decoded). Entries are
// ordered by class, then by clip folder name. Throws std::runtime_error naming the path when: root is
// missing or not a folder, root has no class folders, a class folder has no clip folders, or a clip
// folder has no frames. Files directly inside root or a class folder, and hidden folders, are ignored.
class FrameFolderDataset {
 public:
  explicit FrameFolderDataset(const std::string& root);

  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  const VideoEntry& entry(int64_t index) const;  // throws std::out_of_range outside [0, size())
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::vector<std::string> class_names_;
  std::vector<VideoEntry> entries_;
};

// ---- which frames make a clip ----

struct ClipSampling {
  int64_t frames_per_clip = 16;  // F
  int64_t interval = 4;          // I: take every I-th frame
};

int64_t window(const ClipSampling& s);     // F * I: the frames one window of the video covers
int64_t clip_span(const ClipSampling& s);  // (F-1) * I + 1: the fewest frames one clip needs

// Consecutive, non-overlapping full windows: floor(num_frames / (F*I)). Leftover frames are dropped.
int64_t num_windows(int64_t num_frames, const ClipSampling& s);
// The frames of window k: {k*F*I + j*I for j in 0..F-1}.
std::vector<int64_t> window_frame_indices(const ClipSampling& s, int64_t k);

// Training: one clip {start + j*I} with start uniform in [0, num_frames - clip_span]. `source` names the
// video in the error thrown when num_frames < clip_span (e.g. the clip folder); it may be empty.
std::vector<int64_t> sample_clip_indices(int64_t num_frames, const ClipSampling& s, Generator& gen,
                                         const std::string& source = "");
// Evaluation: `clips` clips with evenly spaced starts over [0, last] (last = num_frames - clip_span):
// start_c = floor(c * last / (clips - 1)), so the first clip starts at frame 0 and the last one ends on
// the last usable frame; a single clip is centred (start = floor(last / 2)). Same error as above.
std::vector<std::vector<int64_t>> eval_clip_indices(int64_t num_frames, const ClipSampling& s, int64_t clips,
                                                    const std::string& source = "");

// frames[indices[0]], frames[indices[1]], ...: the paths of one clip, ready for load_clip.
std::vector<std::string> select_frames(const std::vector<std::string>& frames, const std::vector<int64_t>& indices);

}  // namespace glance::rlt
