// SyntheticVideo: determinism (same seed, any order, any thread), balanced labels, a static background,
// the motion of each class measured from the pixels, what objects / object_size / pan / noise do to the
// fraction of the frame that changes, config validation, write_frames and the Dataset adapter.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rlt/image.h"
#include "rlt/synthetic_video.h"

namespace {

using namespace glance;
using namespace glance::rlt;

SyntheticVideoConfig small_config(uint64_t seed = 0) {
  SyntheticVideoConfig c;
  c.count = 64;
  c.seed = seed;
  return c;
}

bool same_clip(const std::vector<Image>& a, const std::vector<Image>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t)
    if (a[t].height != b[t].height || a[t].width != b[t].width || a[t].rgb != b[t].rgb) return false;
  return true;
}

// Per pixel: does any channel differ? [H * W]
std::vector<bool> differs(const Image& a, const Image& b) {
  std::vector<bool> out(static_cast<size_t>(a.height * a.width));
  for (size_t p = 0; p < out.size(); ++p)
    out[p] = a.rgb[3 * p] != b.rgb[3 * p] || a.rgb[3 * p + 1] != b.rgb[3 * p + 1] || a.rgb[3 * p + 2] != b.rgb[3 * p + 2];
  return out;
}

double fraction(const std::vector<bool>& mask) {
  return static_cast<double>(std::count(mask.begin(), mask.end(), true)) / static_cast<double>(mask.size());
}

struct Blob {
  double x = 0, y = 0;  // centroid, pixels
  int64_t area = 0;
};

Blob blob(const std::vector<bool>& mask, int64_t S) {
  Blob b;
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x)
      if (mask[static_cast<size_t>(y * S + x)]) b.x += x + 0.5, b.y += y + 0.5, ++b.area;
  if (b.area > 0) b.x /= static_cast<double>(b.area), b.y /= static_cast<double>(b.area);
  return b;
}

// The object(s) of clip i in frame t: the pixels that differ from the clip's background.
Blob object_blob(const SyntheticVideo& video, const std::vector<Image>& frames, int64_t i, int64_t t) {
  return blob(differs(frames[static_cast<size_t>(t)], video.background(i, t)), video.config().size);
}

std::vector<int64_t> clips_of_class(const SyntheticVideo& video, int64_t label, size_t how_many) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < video.size() && out.size() < how_many; ++i)
    if (video.label(i) == label) out.push_back(i);
  return out;
}

// Mean over clips of the fraction of pixels that differ between frames 0 and 1.
double mean_changed_fraction(const SyntheticVideoConfig& config, int64_t clips) {
  SyntheticVideo video(config);
  double sum = 0;
  for (int64_t i = 0; i < clips; ++i) {
    const auto frames = video.clip(i);
    sum += fraction(differs(frames[0], frames[1]));
  }
  return sum / static_cast<double>(clips);
}

// What RLT would keep: tubelets of 2 frames x p x p, tubelet k compared with tubelet k - 1 at the same
// place (mean |difference| of the normalised values over 2 x 3 x p x p); the fraction that is dropped
// (<= tau) among those that have a predecessor.
double rlt_dropped_fraction(const Tensor& clip, int64_t p, double tau = 0.1) {
  const int64_t T = clip.size(0), S = clip.size(2), plane = S * S;
  const float* x = clip.data<float>();
  int64_t dropped = 0, total = 0;
  for (int64_t k = 1; k < T / 2; ++k) {
    for (int64_t by = 0; by < S / p; ++by) {
      for (int64_t bx = 0; bx < S / p; ++bx) {
        double diff = 0;
        for (int64_t dt = 0; dt < 2; ++dt)
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t y = by * p; y < (by + 1) * p; ++y)
              for (int64_t xx = bx * p; xx < (bx + 1) * p; ++xx) {
                const int64_t now = ((2 * k + dt) * 3 + c) * plane + y * S + xx;
                diff += std::abs(x[now] - x[now - 2 * 3 * plane]);
              }
        dropped += diff / static_cast<double>(2 * 3 * p * p) <= tau;
        ++total;
      }
    }
  }
  return static_cast<double>(dropped) / static_cast<double>(total);
}

// ---------------------------------------------------------------- determinism

TEST(SyntheticVideo, SameSeedGivesBitIdenticalClips) {
  SyntheticVideoConfig c = small_config(7);
  c.noise = 3, c.pan = 1.5, c.objects = 2;
  SyntheticVideo a(c), b(c);
  for (int64_t i : {0, 1, 9, 63}) {
    EXPECT_TRUE(same_clip(a.clip(i), b.clip(i))) << "clip " << i;
    EXPECT_EQ(a.clip_tensor(i).to_vector<float>(), b.clip_tensor(i).to_vector<float>()) << "clip " << i;
    EXPECT_EQ(a.label(i), b.label(i));
  }
}

TEST(SyntheticVideo, DifferentSeedsAndIndicesGiveDifferentClips) {
  SyntheticVideo a(small_config(1)), b(small_config(2));
  for (int64_t i : {0, 5, 17}) EXPECT_FALSE(same_clip(a.clip(i), b.clip(i))) << "clip " << i;
  EXPECT_FALSE(same_clip(a.clip(0), a.clip(8)));  // same class, other clip
}

TEST(SyntheticVideo, ClipDependsOnlyOnSeedAndIndex) {
  SyntheticVideoConfig c = small_config(3);
  c.noise = 2;
  SyntheticVideo video(c);
  std::vector<std::vector<Image>> forward;
  for (int64_t i = 0; i < 16; ++i) forward.push_back(video.clip(i));
  for (int64_t i = 15; i >= 0; --i) EXPECT_TRUE(same_clip(video.clip(i), forward[static_cast<size_t>(i)]));

  std::vector<std::vector<Image>> threaded(16);  // four threads, interleaved indices, one shared object
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int64_t i = 15 - w; i >= 0; i -= 4) threaded[static_cast<size_t>(i)] = video.clip(i);
    });
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < 16; ++i) EXPECT_TRUE(same_clip(threaded[i], forward[i])) << "clip " << i;
}

TEST(SyntheticVideo, LabelsAreBalanced) {
  for (int64_t count : {2048, 100}) {
    SyntheticVideoConfig c;
    c.count = count;
    SyntheticVideo video(c);
    std::vector<int64_t> per_class(SyntheticVideo::kClasses);
    for (int64_t i = 0; i < count; ++i) ++per_class[static_cast<size_t>(video.label(i))];
    const auto [lo, hi] = std::minmax_element(per_class.begin(), per_class.end());
    EXPECT_LE(*hi - *lo, 1) << "count " << count;
    if (count % SyntheticVideo::kClasses == 0) {
      EXPECT_EQ(*lo, count / SyntheticVideo::kClasses);
    }
  }
  // Each block of kClasses consecutive clips holds every class once; the order depends on the seed.
  bool any_order_differs = false;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    SyntheticVideo video(small_config(seed));
    std::vector<int64_t> block;
    for (int64_t i = 8; i < 16; ++i) block.push_back(video.label(i));
    std::sort(block.begin(), block.end());
    for (int64_t k = 0; k < 8; ++k) EXPECT_EQ(block[static_cast<size_t>(k)], k);
    any_order_differs |= video.label(0) != SyntheticVideo(small_config(0)).label(0) ||
                         video.label(1) != SyntheticVideo(small_config(0)).label(1);
  }
  EXPECT_TRUE(any_order_differs);
  EXPECT_EQ(SyntheticVideo::class_names().size(), static_cast<size_t>(SyntheticVideo::kClasses));
  EXPECT_EQ(SyntheticVideo::class_names()[6], "rotate");
}

// ---------------------------------------------------------------- what moves

TEST(SyntheticVideo, BackgroundIsStaticWithoutPanOrNoise) {
  SyntheticVideoConfig c = small_config(11);
  c.objects = 2;
  SyntheticVideo video(c);
  const int64_t S = c.size, T = c.frames;
  const double largest = c.object_size * 1.15 * 1.5;  // the biggest object a clip can hold
  for (int64_t i = 0; i < 16; ++i) {
    const auto frames = video.clip(i);
    const Image bg = video.background(i, 0);
    EXPECT_EQ(video.background(i, T - 1).rgb, bg.rgb) << "clip " << i;
    std::vector<bool> ever_object(static_cast<size_t>(S * S), false), ever_changed = ever_object;
    for (int64_t t = 0; t < T; ++t) {
      const auto object = differs(frames[static_cast<size_t>(t)], bg);
      // The difference to the background is the objects, no more: at most their area.
      EXPECT_LE(static_cast<double>(std::count(object.begin(), object.end(), true)), c.objects * largest * largest);
      for (size_t p = 0; p < object.size(); ++p) ever_object[p] = ever_object[p] || object[p];
      const auto changed = differs(frames[static_cast<size_t>(t)], frames[0]);
      for (size_t p = 0; p < changed.size(); ++p) ever_changed[p] = ever_changed[p] || changed[p];
    }
    // Every pixel an object never covers is identical in every frame, and that is most of the frame.
    for (size_t p = 0; p < ever_changed.size(); ++p) ASSERT_FALSE(ever_changed[p] && !ever_object[p]) << "clip " << i;
    EXPECT_GT(1.0 - fraction(ever_object), 0.5) << "clip " << i;
  }
}

TEST(SyntheticVideo, MovingFractionGrowsWithObjectsAndObjectSize) {
  SyntheticVideoConfig c = small_config(5);
  const double one = mean_changed_fraction(c, 48);
  c.objects = 3;
  const double three = mean_changed_fraction(c, 48);
  c.objects = 1, c.object_size = 8;
  const double small = mean_changed_fraction(c, 48);
  c.object_size = 20;
  const double big = mean_changed_fraction(c, 48);
  EXPECT_GT(one, 0.005);
  EXPECT_GT(three, 1.8 * one);
  EXPECT_GT(big, 1.5 * small);
  EXPECT_LT(one, 0.2);  // a single object leaves most of the frame alone
}

TEST(SyntheticVideo, TranslateClassesMoveTheirWay) {
  SyntheticVideo video(small_config(2));
  const int64_t T = video.config().frames;
  const double travel = video.config().speed * static_cast<double>(T - 1);
  const double direction[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};  // right, left, down (y grows), up
  for (int64_t label = 0; label < 4; ++label) {
    for (int64_t i : clips_of_class(video, label, 4)) {
      const auto frames = video.clip(i);
      const Blob first = object_blob(video, frames, i, 0), last = object_blob(video, frames, i, T - 1);
      const double dx = last.x - first.x, dy = last.y - first.y;
      const double along = dx * direction[label][0] + dy * direction[label][1];
      const double across = dx * direction[label][1] - dy * direction[label][0];
      EXPECT_NEAR(along, travel, 1.0) << SyntheticVideo::class_names()[label] << " clip " << i;
      EXPECT_NEAR(across, 0.0, 1.0) << SyntheticVideo::class_names()[label] << " clip " << i;
      EXPECT_NEAR(static_cast<double>(last.area), static_cast<double>(first.area), 0.1 * first.area);  // never clipped
      // Frame to frame, too: every step moves forward.
      for (int64_t t = 1; t < T; ++t) {
        const Blob a = object_blob(video, frames, i, t - 1), b = object_blob(video, frames, i, t);
        EXPECT_GT((b.x - a.x) * direction[label][0] + (b.y - a.y) * direction[label][1], 1.0);
      }
    }
  }
}

TEST(SyntheticVideo, GrowAndShrinkChangeTheArea) {
  SyntheticVideo video(small_config(4));
  const int64_t T = video.config().frames;
  for (int64_t label : {4, 5}) {
    const double sign = label == 4 ? 1 : -1;  // grow: area rises; shrink: it falls
    for (int64_t i : clips_of_class(video, label, 4)) {
      const auto frames = video.clip(i);
      std::vector<int64_t> area;
      for (int64_t t = 0; t < T; ++t) area.push_back(object_blob(video, frames, i, t).area);
      const double ratio = static_cast<double>(area.back()) / static_cast<double>(area.front());
      EXPECT_GT(label == 4 ? ratio : 1.0 / ratio, 5.0) << "clip " << i;  // (1.5 / 0.5)^2 = 9 ideally
      // Steadily: never back by more than rasterisation's wobble, always on over three frames.
      for (int64_t t = 1; t < T; ++t) EXPECT_GE(sign * static_cast<double>(area[t] - area[t - 1]), -2.0) << "clip " << i;
      for (int64_t t = 3; t < T; ++t) EXPECT_GT(sign * static_cast<double>(area[t] - area[t - 3]), 0.0) << "clip " << i;
      const Blob first = object_blob(video, frames, i, 0), last = object_blob(video, frames, i, T - 1);
      EXPECT_LT(std::hypot(last.x - first.x, last.y - first.y), 3.0);  // in place
    }
  }
}

TEST(SyntheticVideo, RotateSpinsInPlaceAndBounceComesBack) {
  SyntheticVideo video(small_config(6));
  const int64_t S = video.config().size, T = video.config().frames;
  for (int64_t i : clips_of_class(video, 6, 4)) {  // rotate
    const auto frames = video.clip(i);
    const Blob first = object_blob(video, frames, i, 0);
    for (int64_t t = 1; t < T; ++t) {
      const auto before = differs(frames[static_cast<size_t>(t - 1)], video.background(i, t - 1));
      const auto now = differs(frames[static_cast<size_t>(t)], video.background(i, t));
      int64_t both = 0, either = 0;
      for (size_t p = 0; p < now.size(); ++p) both += before[p] && now[p], either += before[p] || now[p];
      EXPECT_LT(static_cast<double>(both) / static_cast<double>(either), 0.9) << "clip " << i << " frame " << t;
      const Blob b = blob(now, S);
      EXPECT_NEAR(static_cast<double>(b.area), static_cast<double>(first.area), 0.2 * first.area);
      EXPECT_LT(std::hypot(b.x - first.x, b.y - first.y), 0.5 * video.config().object_size);
    }
  }
  const double half_travel = video.config().speed * 0.5 * static_cast<double>(T - 1);
  for (int64_t i : clips_of_class(video, 7, 4)) {  // bounce
    const auto frames = video.clip(i);
    const Blob first = object_blob(video, frames, i, 0), middle = object_blob(video, frames, i, T / 2),
               last = object_blob(video, frames, i, T - 1);
    EXPECT_NEAR(std::hypot(middle.x - first.x, middle.y - first.y), half_travel - 1.0, 1.5) << "clip " << i;
    EXPECT_LT(std::hypot(last.x - first.x, last.y - first.y), 0.5) << "clip " << i;
  }
}

TEST(SyntheticVideo, PanChangesNearlyEveryPixel) {
  SyntheticVideoConfig c = small_config(8);
  EXPECT_LT(mean_changed_fraction(c, 16), 0.1);
  c.pan = 2.0;
  EXPECT_GT(mean_changed_fraction(c, 16), 0.9);
  SyntheticVideo video(c);
  EXPECT_NE(video.background(0, 0).rgb, video.background(0, 1).rgb);
}

TEST(SyntheticVideo, NoiseChangesPixelsEverywhere) {
  SyntheticVideoConfig c = small_config(9);
  c.noise = 4.0;
  EXPECT_GT(mean_changed_fraction(c, 8), 0.95);
  // The noise is N(0, noise) on top of the very same scene (it has its own random stream).
  SyntheticVideoConfig clean_config = c;
  clean_config.noise = 0;
  SyntheticVideo noisy(c), clean(clean_config);
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const auto a = noisy.clip(i), b = clean.clip(i);
    for (size_t t = 0; t < a.size(); ++t)
      for (size_t j = 0; j < a[t].rgb.size(); ++j) {
        if (b[t].rgb[j] < 20 || b[t].rgb[j] > 235) continue;  // away from the clamp
        const double d = static_cast<double>(a[t].rgb[j]) - b[t].rgb[j];
        sum += d, sum2 += d * d, ++n;
      }
  }
  const double mean = sum / n, std = std::sqrt(sum2 / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(std, 4.0, 0.2);  // rounding to integers adds 1/12 to the variance
}

TEST(SyntheticVideo, StaticClipsLetRltDropMostTubelets) {
  SyntheticVideoConfig c = small_config(10);
  SyntheticVideo still(c);
  c.pan = 2.0;
  SyntheticVideo panning(c);
  c.pan = 0, c.noise = 8.0;
  SyntheticVideo noisy(c);
  double d_still = 0, d_pan = 0, d_noise = 0;
  for (int64_t i = 0; i < 8; ++i) {
    d_still += rlt_dropped_fraction(still.clip_tensor(i), 8) / 8;
    d_pan += rlt_dropped_fraction(panning.clip_tensor(i), 8) / 8;
    d_noise += rlt_dropped_fraction(noisy.clip_tensor(i), 8) / 8;
  }
  EXPECT_GT(d_still, 0.6);   // the static background goes
  EXPECT_LT(d_pan, 0.1);     // a panning camera keeps nearly everything
  EXPECT_LT(d_noise, 0.1);   // noise of 8 grey levels is above tau's ~6
}

// ---------------------------------------------------------------- API

TEST(SyntheticVideo, SmallLargeAndOddConfigsWork) {
  SyntheticVideoConfig tiny;  // the smallest frame, odd sizes, many objects, everything on
  tiny.count = 16, tiny.frames = 2, tiny.size = 9, tiny.object_size = 3, tiny.speed = 0.3;
  tiny.objects = 5, tiny.pan = 3, tiny.noise = 1;
  SyntheticVideoConfig big;
  big.count = 8, big.frames = 32, big.size = 127, big.object_size = 24, big.speed = 2.5, big.pan = 1.3;
  SyntheticVideoConfig still;  // speed 0: only grow and shrink move
  still.count = 8, still.speed = 0;
  for (const SyntheticVideoConfig& c : {tiny, big, still}) {
    SyntheticVideo video(c);
    for (int64_t i = 0; i < c.count; ++i) {
      const auto frames = video.clip(i);
      ASSERT_EQ(static_cast<int64_t>(frames.size()), c.frames);
      for (const Image& f : frames) ASSERT_EQ(f.rgb.size(), static_cast<size_t>(c.size * c.size * 3));
      EXPECT_EQ(video.clip_tensor(i).shape(), (Shape{c.frames, 3, c.size, c.size}));
      if (c.speed == 0 && video.label(i) != 4 && video.label(i) != 5) {
        EXPECT_EQ(frames.front().rgb, frames.back().rgb);
      }
    }
  }
}

TEST(SyntheticVideo, InvalidConfigsNameTheField) {
  auto expect_rejected = [](SyntheticVideoConfig c, const std::string& field, const std::string& value) {
    try {
      SyntheticVideo video(c);
      ADD_FAILURE() << field << " = " << value << " was accepted";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(field + " = " + value), std::string::npos) << what;
    }
  };
  SyntheticVideoConfig c;
  auto with = [&](auto edit) { SyntheticVideoConfig d = c; edit(d); return d; };
  expect_rejected(with([](auto& d) { d.count = 0; }), "count", "0");
  expect_rejected(with([](auto& d) { d.frames = 1; }), "frames", "1");
  expect_rejected(with([](auto& d) { d.size = 4; }), "size", "4");
  expect_rejected(with([](auto& d) { d.objects = 0; }), "objects", "0");
  expect_rejected(with([](auto& d) { d.object_size = 1; }), "object_size", "1");
  expect_rejected(with([](auto& d) { d.object_size = 30; }), "object_size", "30");  // grows past 64
  expect_rejected(with([](auto& d) { d.speed = 4; }), "speed", "4");                // 60 px of travel
  expect_rejected(with([](auto& d) { d.frames = 32; }), "speed", "2");
  expect_rejected(with([](auto& d) { d.speed = -1; }), "speed", "-1");
  expect_rejected(with([](auto& d) { d.pan = -0.5; }), "pan", "-0.5");
  expect_rejected(with([](auto& d) { d.pan = NAN; }), "pan", "nan");
  expect_rejected(with([](auto& d) { d.noise = -2; }), "noise", "-2");
  EXPECT_NO_THROW(SyntheticVideo(with([](auto& d) { d.size = 128; d.frames = 32; d.object_size = 24; })));
  SyntheticVideo video(small_config());
  EXPECT_THROW(video.clip(64), std::out_of_range);
  EXPECT_THROW(video.label(-1), std::out_of_range);
  EXPECT_THROW(video.background(0, 16), std::out_of_range);
}

TEST(SyntheticVideo, WriteFramesRoundTripsThroughPng) {
  SyntheticVideoConfig c = small_config(12);
  c.noise = 2;
  SyntheticVideo video(c);
  const std::filesystem::path root = std::filesystem::path(testing::TempDir()) /
                                     ("glance_synthetic_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  video.write_frames(root.string(), 3, 2);
  int64_t folders = 0, files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
    (entry.is_directory() ? folders : files) += 1;
  EXPECT_EQ(files, 2 * c.frames);
  EXPECT_LE(folders, 4);  // one or two class folders, two clip folders
  for (int64_t i : {3, 4}) {
    char clip_name[32];
    std::snprintf(clip_name, sizeof clip_name, "clip_%05lld", static_cast<long long>(i));
    const auto folder = root / SyntheticVideo::class_names()[static_cast<size_t>(video.label(i))] / clip_name;
    const auto frames = video.clip(i);
    for (int64_t t = 0; t < c.frames; ++t) {
      char frame_name[32];
      std::snprintf(frame_name, sizeof frame_name, "%05lld.png", static_cast<long long>(t));
      const Image back = load_image((folder / frame_name).string());
      EXPECT_EQ(back.height, c.size);
      EXPECT_EQ(back.width, c.size);
      EXPECT_EQ(back.rgb, frames[static_cast<size_t>(t)].rgb) << (folder / frame_name);
    }
  }
  EXPECT_THROW(video.write_frames(root.string(), 63, 2), std::out_of_range);
  std::filesystem::remove_all(root);
}

TEST(SyntheticVideo, ClipTensorIsImageNetNormalised) {
  SyntheticVideo video(small_config(13));
  const auto frames = video.clip(5);
  const Tensor x = video.clip_tensor(5);
  const int64_t S = video.config().size, T = video.config().frames;
  ASSERT_EQ(x.shape(), (Shape{T, 3, S, S}));
  const float* data = x.data<float>();
  const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
  for (int64_t t : {int64_t{0}, T - 1})
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p : {int64_t{0}, int64_t{1}, int64_t{777}, S * S - 1}) {
        const double v = frames[static_cast<size_t>(t)].rgb[static_cast<size_t>(3 * p + c)];
        EXPECT_NEAR(data[(t * 3 + c) * S * S + p], (v / 255.0 - mean[c]) / std[c], 1e-6);
      }
}

TEST(SyntheticVideoDataset, GetReturnsClipAndLabel) {
  SyntheticVideoDataset dataset(small_config(14));
  EXPECT_EQ(dataset.size(), 64);
  const nn::Example e = dataset.get(10);
  EXPECT_EQ(e.label, dataset.video().label(10));
  EXPECT_EQ(e.input.to_vector<float>(), dataset.video().clip_tensor(10).to_vector<float>());
  EXPECT_EQ(e.input.shape(), (Shape{16, 3, 64, 64}));
}

}  // namespace
