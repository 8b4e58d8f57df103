// Frame transforms: bilinear resize against values worked out by hand from the half-pixel formula (2x
// upsample, downsamples, ties to even), crop / flip / centre crop, torchvision's random resized crop
// (inside the image, reproducible, the scale range, the fallback), ImageNet normalisation by hand, and
// the clip pipeline applying one box and one flip to every frame.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rlt/transforms.h"
#include "error_text.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::rlt;

using test_support::Contains;
using test_support::error_of;

// An h x w image whose three channels all hold `values` (row-major, h * w of them).
Image grey_image(int64_t h, int64_t w, const std::vector<int>& values) {
  Image img(h, w);
  for (int64_t i = 0; i < h * w; ++i) {
    for (int c = 0; c < 3; ++c) img.rgb[i * 3 + c] = static_cast<uint8_t>(values[i]);
  }
  return img;
}

// Channel 0 of an image, row-major.
std::vector<int> channel0(const Image& img) {
  std::vector<int> out;
  for (int64_t i = 0; i < img.height * img.width; ++i) out.push_back(img.rgb[i * 3]);
  return out;
}

Image noise_image(int64_t h, int64_t w, uint32_t seed) {
  Image img(h, w);
  for (uint8_t& v : img.rgb) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(seed >> 24);
  }
  return img;
}

TEST(BilinearResize, TwoTimesUpsampleByHand) {
  // Output pixel d samples src = (d + 0.5) * 2/4 - 0.5 = -0.25, 0.25, 0.75, 1.25, i.e. (clamping and
  // the edge) pixel 0, 0.75 p0 + 0.25 p1, 0.25 p0 + 0.75 p1, pixel 1. Same weights along y.
  //   p = [[0, 100], [200, 40]]
  //   row 0 along x: 0, 25, 75, 100          row 1 along x: 200, 160, 80, 40
  //   y = 1: 0.75 row0 + 0.25 row1 = 50, 58.75, 76.25, 85;  y = 2: 0.25 row0 + 0.75 row1 = 150, 126.25, 78.75, 55
  const Image out = resize_bilinear(grey_image(2, 2, {0, 100, 200, 40}), 4, 4);
  ASSERT_EQ(out.height, 4);
  ASSERT_EQ(out.width, 4);
  EXPECT_EQ(channel0(out), (std::vector<int>{0, 25, 75, 100,  //
                                             50, 59, 76, 85,   //
                                             150, 126, 79, 55,  //
                                             200, 160, 80, 40}));
  // All three channels get the same treatment.
  for (int64_t i = 0; i < 16; ++i) {
    EXPECT_EQ(out.rgb[i * 3 + 1], out.rgb[i * 3]);
    EXPECT_EQ(out.rgb[i * 3 + 2], out.rgb[i * 3]);
  }
}

TEST(BilinearResize, TiesRoundToEven) {
  // [0, 6] -> 4 wide: 0, 0.75*0 + 0.25*6 = 1.5, 0.25*0 + 0.75*6 = 4.5, 6. Ties to even: 2 and 4
  // (torch.round), not 2 and 5 (round half up).
  EXPECT_EQ(channel0(resize_bilinear(grey_image(1, 2, {0, 6}), 1, 4)), (std::vector<int>{0, 2, 4, 6}));
}

TEST(BilinearResize, DownsamplesByHand) {
  // 4 -> 2: src = (d + 0.5) * 2 - 0.5 = 0.5, 2.5: the mean of pixels (0, 1), then of (2, 3).
  EXPECT_EQ(channel0(resize_bilinear(grey_image(1, 4, {10, 20, 30, 50}), 1, 2)), (std::vector<int>{15, 40}));
  // 6 -> 2: src = 1.0, 4.0: exactly pixels 1 and 4; the others are skipped (no antialiasing).
  EXPECT_EQ(channel0(resize_bilinear(grey_image(1, 6, {0, 10, 20, 30, 40, 50}), 1, 2)), (std::vector<int>{10, 40}));
  // 5 -> 3: scale 5/3, src = 1/3, 2, 11/3: 2/3 p0 + 1/3 p1, p2, 1/3 p3 + 2/3 p4.
  EXPECT_EQ(channel0(resize_bilinear(grey_image(1, 5, {0, 30, 60, 90, 120}), 1, 3)), (std::vector<int>{10, 60, 110}));
  // Along y too: a 4 x 1 column -> 2 x 1.
  EXPECT_EQ(channel0(resize_bilinear(grey_image(4, 1, {10, 20, 30, 50}), 2, 1)), (std::vector<int>{15, 40}));
}

TEST(BilinearResize, MatchesTheFormulaOnANoiseImage) {
  // A straightforward double-precision reading of the formula, on a 7 x 5 image resized to 3 x 11 (down
  // in y, up in x, non-integer ratios). float32 vs double may differ only where the value is within
  // rounding of a .5 tie, so allow 1.
  const Image in = noise_image(7, 5, 3);
  const Image out = resize_bilinear(in, 3, 11);
  auto tap = [](int64_t d, int64_t in_size, int64_t out_size, int64_t& i0, int64_t& i1, double& w1) {
    double src = std::max(0.0, (d + 0.5) * in_size / out_size - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in_size - 1);
    i1 = std::min<int64_t>(i0 + 1, in_size - 1);
    w1 = src - i0;
  };
  for (int64_t y = 0; y < 3; ++y) {
    for (int64_t x = 0; x < 11; ++x) {
      int64_t y0, y1, x0, x1;
      double wy, wx;
      tap(y, 7, 3, y0, y1, wy);
      tap(x, 5, 11, x0, x1, wx);
      for (int c = 0; c < 3; ++c) {
        const double top = in.at(y0, x0)[c] * (1 - wx) + in.at(y0, x1)[c] * wx;
        const double bottom = in.at(y1, x0)[c] * (1 - wx) + in.at(y1, x1)[c] * wx;
        const double want = std::nearbyint(top * (1 - wy) + bottom * wy);
        EXPECT_NEAR(out.at(y, x)[c], want, 1.0) << "at y=" << y << " x=" << x << " c=" << c;
      }
    }
  }
}

TEST(BilinearResize, SameSizeIsTheIdentity) {
  const Image in = noise_image(9, 13, 11);
  EXPECT_EQ(resize_bilinear(in, 9, 13).rgb, in.rgb);
  EXPECT_THROW(resize_bilinear(in, 0, 4), std::invalid_argument);
}

TEST(ImageTransforms, HorizontalFlip) {
  const Image in = grey_image(2, 3, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(channel0(hflip(in)), (std::vector<int>{3, 2, 1, 6, 5, 4}));
  const Image colour = noise_image(3, 4, 5);
  EXPECT_EQ(hflip(hflip(colour)).rgb, colour.rgb);
  EXPECT_EQ(hflip(colour).at(1, 0)[2], colour.at(1, 3)[2]);  // whole pixels move, channels stay in order
}

TEST(ImageTransforms, Crop) {
  std::vector<int> v;
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) v.push_back(10 * y + x);
  }
  const Image in = grey_image(4, 5, v);
  const Image out = crop(in, {1, 2, 2, 3});
  ASSERT_EQ(out.height, 2);
  ASSERT_EQ(out.width, 3);
  EXPECT_EQ(channel0(out), (std::vector<int>{12, 13, 14, 22, 23, 24}));
  EXPECT_EQ(crop(in, {0, 0, 4, 5}).rgb, in.rgb);
  const std::string msg = error_of([&] { crop(in, {3, 0, 2, 2}); });  // rows 3..4 of a 4-row image
  EXPECT_TRUE(Contains(msg, "4 x 5"));
  EXPECT_THROW(crop(in, {0, 4, 1, 2}), std::invalid_argument);
  EXPECT_THROW(crop(in, {-1, 0, 1, 1}), std::invalid_argument);
  EXPECT_THROW(crop(in, {0, 0, 0, 1}), std::invalid_argument);
}

TEST(ImageTransforms, CenterCropBox) {
  auto same = [](const CropBox& a, const CropBox& b) {
    return a.y == b.y && a.x == b.x && a.height == b.height && a.width == b.width;
  };
  EXPECT_TRUE(same(center_crop_box(10, 20, 10), {0, 5, 10, 10}));
  EXPECT_TRUE(same(center_crop_box(240, 320, 240), {0, 40, 240, 240}));  // the largest centred square
  EXPECT_TRUE(same(center_crop_box(7, 7, 4), {2, 2, 4, 4}));              // round(1.5) = 2
  EXPECT_TRUE(same(center_crop_box(9, 10, 4), {2, 3, 4, 4}));             // round(2.5) = 2 (ties to even), round(3) = 3
  EXPECT_THROW(center_crop_box(10, 20, 11), std::invalid_argument);
  EXPECT_THROW(center_crop_box(10, 20, 0), std::invalid_argument);
}

TEST(RandomResizedCrop, StaysInsideAndCoversTheScaleRange) {
  // {h, w, the largest area fraction a box can reach}: 1 when the image's own aspect w / h lies in
  // [3/4, 4/3]; else the box is capped by the ratio (100 x 150: 100 x 133, 0.89; 320 x 180: 240 x 180, 0.75).
  struct Case {
    int64_t h, w;
    double best;
  };
  for (const auto [h, w, best] : {Case{100, 150, 0.887}, Case{64, 64, 1.0}, Case{240, 320, 1.0}, Case{320, 180, 0.75}}) {
    Generator gen(h * 1000 + w);
    double lo = 1.0, hi = 0.0;
    for (int i = 0; i < 500; ++i) {
      const CropBox b = random_resized_crop_box(h, w, gen);
      ASSERT_GE(b.y, 0);
      ASSERT_GE(b.x, 0);
      ASSERT_GE(b.height, 1);
      ASSERT_GE(b.width, 1);
      ASSERT_LE(b.y + b.height, h);
      ASSERT_LE(b.x + b.width, w);
      const double frac = static_cast<double>(b.height * b.width) / static_cast<double>(h * w);
      const double aspect = static_cast<double>(b.width) / static_cast<double>(b.height);
      EXPECT_GE(frac, 0.45);  // scale >= 0.5 up to the rounding of the sides
      EXPECT_GE(aspect, 0.7);  // ratio in [3/4, 4/3], likewise
      EXPECT_LE(aspect, 1.4);
      lo = std::min(lo, frac);
      hi = std::max(hi, frac);
    }
    EXPECT_LT(lo, 0.55) << h << " x " << w;
    EXPECT_GT(hi, best - 0.1) << h << " x " << w;
  }
}

TEST(RandomResizedCrop, ReproducibleForASeed) {
  Generator a(123), b(123), c(124);
  bool any_differs = false;
  for (int i = 0; i < 20; ++i) {
    const CropBox x = random_resized_crop_box(240, 320, a), y = random_resized_crop_box(240, 320, b);
    const CropBox z = random_resized_crop_box(240, 320, c);
    EXPECT_TRUE(x.y == y.y && x.x == y.x && x.height == y.height && x.width == y.width);
    any_differs |= !(x.y == z.y && x.x == z.x && x.height == z.height && x.width == z.width);
  }
  EXPECT_TRUE(any_differs);
}

TEST(RandomResizedCrop, FallsBackToACentralCrop) {
  // The whole area of a 100 x 300 image (scale 1) never fits at an aspect <= 4/3: the box needs a height
  // of sqrt(30000 / aspect) >= 150. Fallback: full height, width round(100 * 4/3) = 133, centred.
  Generator gen(1);
  CropBox b = random_resized_crop_box(100, 300, gen, {1.0, 1.0});
  EXPECT_EQ(b.y, 0);
  EXPECT_EQ(b.height, 100);
  EXPECT_EQ(b.width, 133);
  EXPECT_EQ(b.x, (300 - 133) / 2);
  // Tall: full width, height round(100 / (3/4)) = 133.
  b = random_resized_crop_box(300, 100, gen, {1.0, 1.0});
  EXPECT_EQ(b.x, 0);
  EXPECT_EQ(b.width, 100);
  EXPECT_EQ(b.height, 133);
  EXPECT_EQ(b.y, (300 - 133) / 2);
  EXPECT_THROW(random_resized_crop_box(10, 10, gen, {0.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(random_resized_crop_box(10, 10, gen, {0.5, 1.0}, {2.0, 1.0}), std::invalid_argument);
}

TEST(ClipNormalize, ByHand) {
  // (v / 255 - mean[c]) / std[c], laid out [T, C, H, W].
  Image img(1, 2);
  const uint8_t px[] = {0, 128, 255, 10, 20, 30};
  std::copy(std::begin(px), std::end(px), img.rgb.begin());
  const Tensor t = normalize_clip({img});
  ASSERT_EQ(t.shape(), (Shape{1, 3, 1, 2}));
  EXPECT_EQ(t.dtype(), DType::Float32);
  const std::vector<float> want = {-2.117904f, -1.946656f, 0.205182f, -1.685574f, 2.640000f, -1.281569f};
  const std::vector<float> got = t.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
}

TEST(ClipTransformPipeline, EvalIsCentreSquareThenResize) {
  std::vector<Image> frames = {noise_image(8, 12, 1), noise_image(8, 12, 2), noise_image(8, 12, 3)};
  const Tensor out = transform_clip(frames, ClipTransform{.size = 4});
  ASSERT_EQ(out.shape(), (Shape{3, 3, 4, 4}));
  std::vector<Image> expected;
  for (const Image& f : frames) expected.push_back(resize_bilinear(crop(f, {0, 2, 8, 8}), 4, 4));
  EXPECT_EQ(out.to_vector<float>(), normalize_clip(expected).to_vector<float>());
}

TEST(ClipTransformPipeline, TrainUsesOneBoxAndOneFlipForTheClip) {
  std::vector<Image> frames;
  for (uint32_t t = 0; t < 4; ++t) frames.push_back(noise_image(30, 40, 100 + t));
  const ClipTransform opts{.size = 8, .train = true};
  for (uint64_t seed = 0; seed < 6; ++seed) {
    Generator gen(seed), replay(seed);
    const Tensor out = transform_clip(frames, opts, &gen);
    // Replay the documented draws: the box, then the flip; apply them to every frame.
    const CropBox box = random_resized_crop_box(30, 40, replay, {0.5, 1.0});
    const bool flip = ops::rand({1}, DType::Float64, &replay).item() < 0.5;
    std::vector<Image> expected;
    for (const Image& f : frames) {
      Image r = resize_bilinear(crop(f, box), 8, 8);
      expected.push_back(flip ? hflip(r) : r);
    }
    EXPECT_EQ(out.to_vector<float>(), normalize_clip(expected).to_vector<float>()) << "seed " << seed;
  }
  // Identical frames stay identical after the transform (a per-frame box would break this).
  const std::vector<Image> same(5, noise_image(30, 40, 9));
  Generator gen(77);
  const std::vector<float> v = transform_clip(same, opts, &gen).to_vector<float>();
  const size_t per_frame = v.size() / 5;
  for (size_t t = 1; t < 5; ++t) {
    EXPECT_TRUE(std::equal(v.begin(), v.begin() + per_frame, v.begin() + t * per_frame)) << "frame " << t;
  }
}

TEST(ClipTransformPipeline, FlipProbabilityAndSwitch) {
  // A square S x S clip with min_scale 1: the box is always the whole image, so the output is the
  // normalised clip, mirrored or not.
  const std::vector<Image> frames = {noise_image(8, 8, 4), noise_image(8, 8, 5)};
  const std::vector<float> plain = normalize_clip(frames).to_vector<float>();
  const std::vector<float> mirrored = normalize_clip({hflip(frames[0]), hflip(frames[1])}).to_vector<float>();
  int flips = 0, trials = 200;
  Generator gen(3);
  for (int i = 0; i < trials; ++i) {
    const std::vector<float> v = transform_clip(frames, {.size = 8, .train = true, .min_scale = 1.0}, &gen).to_vector<float>();
    ASSERT_TRUE(v == plain || v == mirrored);
    flips += v == mirrored ? 1 : 0;
  }
  EXPECT_GT(flips, 70);
  EXPECT_LT(flips, 130);
  for (int i = 0; i < 20; ++i) {
    const ClipTransform no_flip{.size = 8, .train = true, .min_scale = 1.0, .flip = false};
    EXPECT_EQ(transform_clip(frames, no_flip, &gen).to_vector<float>(), plain);
  }
}

TEST(ClipTransformPipeline, Errors) {
  EXPECT_THROW(transform_clip({}, {}), std::invalid_argument);
  const std::string msg = error_of([] { transform_clip({Image(8, 8), Image(8, 8), Image(6, 8)}, {.size = 4}); });
  EXPECT_TRUE(Contains(msg, "frame 2"));
  EXPECT_TRUE(Contains(msg, "6 x 8"));
  EXPECT_THROW(normalize_clip({Image(2, 2), Image(2, 3)}), std::invalid_argument);
  EXPECT_THROW(transform_clip({Image(8, 8)}, {.size = 0}), std::invalid_argument);
  EXPECT_THROW(transform_clip({Image(8, 8)}, {.size = 4, .train = true, .min_scale = 0.0}), std::invalid_argument);
}

}  // namespace
