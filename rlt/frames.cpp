#include "rlt/frames.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "tensor/ops.h"

namespace glance::rlt {

namespace fs = std::filesystem;

namespace {

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool is_frame_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The visible subfolders (or files) of `dir`, sorted by name in byte order. std::string's operator<
// compares through char_traits<char>, which orders bytes as unsigned char (like memcmp), whatever the
// signedness of char: the order is the same on every platform.
std::vector<fs::path> children(const fs::path& dir, bool folders) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (is_hidden(p)) continue;
    std::error_code type_ec;  // is_directory follows symbolic links
    // A frame is anything named like one that is not a folder: a FIFO or a device named 00003.png is listed, so
    // that reading it fails naming it (load_image) and the dataset scan reports it, instead of a silent gap.
    if (folders ? fs::is_directory(p, type_ec) : (!fs::is_directory(p, type_ec) && is_frame_file(p))) {
      out.push_back(p);
    }
  }
  if (ec) throw std::runtime_error("cannot read folder '" + dir.string() + "': " + ec.message());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return out;
}

void require_folder(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(what + " '" + dir.string() + "' is not a folder (or does not exist)");
  }
}

void check_sampling(const ClipSampling& s) {
  if (s.frames_per_clip < 1 || s.interval < 1) {
    throw std::invalid_argument("ClipSampling: frames_per_clip (" + std::to_string(s.frames_per_clip) +
                                ") and interval (" + std::to_string(s.interval) + ") must both be >= 1");
  }
}

// The last start a clip can have, after checking that the video is long enough.
int64_t last_start(int64_t num_frames, const ClipSampling& s, const std::string& source) {
  check_sampling(s);
  const int64_t span = clip_span(s);
  if (num_frames < span) {
    throw std::runtime_error((source.empty() ? std::string("video") : "video '" + source + "'") + " has " +
                             std::to_string(num_frames) + " frames, but a clip of " + std::to_string(s.frames_per_clip) +
                             " frames taken every " + std::to_string(s.interval) + " needs at least " +
                             std::to_string(span));
  }
  return num_frames - span;
}

std::vector<int64_t> clip_from(int64_t start, const ClipSampling& s) {
  std::vector<int64_t> indices(static_cast<size_t>(s.frames_per_clip));
  for (int64_t j = 0; j < s.frames_per_clip; ++j) indices[j] = start + j * s.interval;
  return indices;
}

}  // namespace

// ---- one video ----

std::vector<std::string> list_frames(const std::string& dir) {
  require_folder(dir, "frame folder");
  std::vector<std::string> frames;
  for (const fs::path& p : children(dir, /*folders=*/false)) frames.push_back(p.string());
  if (frames.empty()) {
    throw std::runtime_error("frame folder '" + dir + "' holds no frames (.png, .jpg, .jpeg or .bmp files)");
  }
  return frames;
}

std::vector<Image> load_clip(const std::vector<std::string>& frame_paths, int64_t max_side) {
  if (frame_paths.empty()) throw std::invalid_argument("load_clip: no frame paths given");
  std::vector<Image> frames;
  frames.reserve(frame_paths.size());
  for (const std::string& path : frame_paths) {
    frames.push_back(load_image(path, max_side));
    const Image& first = frames.front();
    const Image& last = frames.back();
    if (last.height != first.height || last.width != first.width) {
      throw std::runtime_error("frame '" + path + "' is " + std::to_string(last.height) + " x " +
                               std::to_string(last.width) + " (height x width) but the clip's first frame '" +
                               frame_paths.front() + "' is " + std::to_string(first.height) + " x " +
                               std::to_string(first.width) + "; all frames of a clip must have the same size");
    }
  }
  return frames;
}

// ---- many videos ----

FrameFolderDataset::FrameFolderDataset(const std::string& root) : root_(root) {
  require_folder(root, "dataset root");
  const std::vector<fs::path> classes = children(root, /*folders=*/true);
  if (classes.empty()) {
    throw std::runtime_error("dataset root '" + root + "' has no class folders (expected root/<class>/<clip>/<frames>)");
  }
  for (const fs::path& class_dir : classes) {
    const int64_t label = static_cast<int64_t>(class_names_.size());
    class_names_.push_back(class_dir.filename().string());
    const std::vector<fs::path> clips = children(class_dir, /*folders=*/true);
    if (clips.empty()) {
      throw std::runtime_error("class folder '" + class_dir.string() +
                               "' has no clip folders (expected <class>/<clip>/<frames>)");
    }
    for (const fs::path& clip_dir : clips) {
      // list_frames names the clip folder if it holds no frames.
      entries_.push_back({clip_dir.string(), class_names_.back(), label, list_frames(clip_dir.string())});
    }
  }
}

const VideoEntry& FrameFolderDataset::entry(int64_t index) const {
  if (index < 0 || index >= size()) {
    throw std::out_of_range("FrameFolderDataset: index " + std::to_string(index) + " outside [0, " +
                            std::to_string(size()) + ")");
  }
  return entries_[static_cast<size_t>(index)];
}

// ---- which frames make a clip ----

int64_t window(const ClipSampling& s) {
  check_sampling(s);
  return s.frames_per_clip * s.interval;
}

int64_t clip_span(const ClipSampling& s) {
  check_sampling(s);
  return (s.frames_per_clip - 1) * s.interval + 1;
}

int64_t num_windows(int64_t num_frames, const ClipSampling& s) {
  if (num_frames < 0) throw std::invalid_argument("num_windows: num_frames " + std::to_string(num_frames) + " < 0");
  return num_frames / window(s);
}

std::vector<int64_t> window_frame_indices(const ClipSampling& s, int64_t k) {
  if (k < 0) throw std::invalid_argument("window_frame_indices: window " + std::to_string(k) + " < 0");
  return clip_from(k * window(s), s);
}

std::vector<int64_t> sample_clip_indices(int64_t num_frames, const ClipSampling& s, Generator& gen,
                                         const std::string& source) {
  const int64_t last = last_start(num_frames, s, source);
  const int64_t start = static_cast<int64_t>(ops::randint(0, last + 1, {1}, &gen).item());
  return clip_from(start, s);
}

std::vector<std::vector<int64_t>> eval_clip_indices(int64_t num_frames, const ClipSampling& s, int64_t clips,
                                                    const std::string& source) {
  if (clips < 1) throw std::invalid_argument("eval_clip_indices: clips must be >= 1, got " + std::to_string(clips));
  const int64_t last = last_start(num_frames, s, source);
  std::vector<std::vector<int64_t>> out;
  for (int64_t c = 0; c < clips; ++c) {
    const int64_t start = clips == 1 ? last / 2 : c * last / (clips - 1);  // integer division: floor
    out.push_back(clip_from(start, s));
  }
  return out;
}

std::vector<std::string> select_frames(const std::vector<std::string>& frames, const std::vector<int64_t>& indices) {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (int64_t i : indices) {
    if (i < 0 || i >= static_cast<int64_t>(frames.size())) {
      throw std::out_of_range("select_frames: frame index " + std::to_string(i) + " outside [0, " +
                              std::to_string(frames.size()) + ")");
    }
    out.push_back(frames[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace glance::rlt
