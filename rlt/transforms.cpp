#include "rlt/transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tensor/ops.h"

namespace glance::rlt {

namespace {

std::string size_str(int64_t h, int64_t w) { return std::to_string(h) + " x " + std::to_string(w); }

std::string box_str(const CropBox& b) {
  return "box (y=" + std::to_string(b.y) + ", x=" + std::to_string(b.x) + ", " + size_str(b.height, b.width) + ")";
}

// Python's round(), which breaks ties to even: round(2.5) == 2. std::nearbyint does the same in the
// default rounding mode.
int64_t round_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

// One output coordinate of a bilinear resize along one axis: the two source pixels and their weights.
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

// PyTorch's compute_indices_weights_linear (align_corners=False), in float32 as its CPU kernel computes
// it: src = scale * (dst + 0.5) - 0.5 with scale = in / out, clamped at 0 (the first half pixel
// repeats the edge); i0 = floor(src), capped at in - 1; i1 = the next pixel, or i0 again at the edge.
std::vector<Tap> bilinear_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(static_cast<size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t d = 0; d < out; ++d) {
    float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const float w1 = std::clamp(src - static_cast<float>(i0), 0.0f, 1.0f);
    taps[d] = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.0f - w1, w1};
  }
  return taps;
}

void check_same_size(const std::vector<Image>& frames, const char* op) {
  if (frames.empty()) throw std::invalid_argument(std::string(op) + ": no frames");
  for (size_t t = 1; t < frames.size(); ++t) {
    if (frames[t].height != frames[0].height || frames[t].width != frames[0].width) {
      throw std::invalid_argument(std::string(op) + ": frame " + std::to_string(t) + " is " +
                                  size_str(frames[t].height, frames[t].width) + " but frame 0 is " +
                                  size_str(frames[0].height, frames[0].width) + "; a clip's frames must share one size");
    }
  }
}

// Writes frames into a float32 [T, 3, H, W] tensor, normalised. A 256-entry table per channel turns
// each byte into its normalised value: (v / 255 - mean) / std, all in float32.
Tensor to_normalized_tensor(const std::vector<Image>& frames) {
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) table[c][v] = (static_cast<float>(v) / 255.0f - kImageNetMean[c]) / kImageNetStd[c];
  }
  const int64_t T = static_cast<int64_t>(frames.size()), H = frames[0].height, W = frames[0].width;
  Tensor out = Tensor::empty({T, 3, H, W}, DType::Float32);
  float* dst = out.data<float>();
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* src = frames[t].rgb.data();  // [H, W, 3]: channels last
    for (int64_t c = 0; c < 3; ++c) {
      float* plane = dst + (t * 3 + c) * H * W;  // [H, W] of channel c: channels first
      for (int64_t p = 0; p < H * W; ++p) plane[p] = table[c][src[p * 3 + c]];
    }
  }
  return out;
}

}  // namespace

Image resize_bilinear(const Image& image, int64_t height, int64_t width) {
  if (image.height <= 0 || image.width <= 0) throw std::invalid_argument("resize_bilinear: empty input image");
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument("resize_bilinear: output size " + size_str(height, width) + " must be positive");
  }
  const std::vector<Tap> ty = bilinear_taps(image.height, height), tx = bilinear_taps(image.width, width);
  Image out(height, width);
  for (int64_t y = 0; y < height; ++y) {
    const Tap& a = ty[y];
    for (int64_t x = 0; x < width; ++x) {
      const Tap& b = tx[x];
      const uint8_t *p00 = image.at(a.i0, b.i0), *p01 = image.at(a.i0, b.i1);
      const uint8_t *p10 = image.at(a.i1, b.i0), *p11 = image.at(a.i1, b.i1);
      uint8_t* q = out.at(y, x);
      for (int c = 0; c < 3; ++c) {
        // Inner axis (x) first, then the outer axis (y): PyTorch's order of operations.
        const float top = static_cast<float>(p00[c]) * b.w0 + static_cast<float>(p01[c]) * b.w1;
        const float bottom = static_cast<float>(p10[c]) * b.w0 + static_cast<float>(p11[c]) * b.w1;
        const float v = top * a.w0 + bottom * a.w1;
        q[c] = static_cast<uint8_t>(std::clamp(std::nearbyint(v), 0.0f, 255.0f));
      }
    }
  }
  return out;
}

Image crop(const Image& image, const CropBox& box) {
  if (box.height < 1 || box.width < 1 || box.y < 0 || box.x < 0 || box.y + box.height > image.height ||
      box.x + box.width > image.width) {
    throw std::invalid_argument("crop: " + box_str(box) + " is empty or not inside the " +
                                size_str(image.height, image.width) + " image");
  }
  Image out(box.height, box.width);
  for (int64_t y = 0; y < box.height; ++y) {
    std::copy_n(image.at(box.y + y, box.x), box.width * 3, out.at(y, 0));
  }
  return out;
}

CropBox center_crop_box(int64_t h, int64_t w, int64_t size) {
  if (size < 1 || size > h || size > w) {
    throw std::invalid_argument("center_crop_box: size " + std::to_string(size) + " must be in 1..min(h, w) for a " +
                                size_str(h, w) + " image");
  }
  return {round_even((h - size) / 2.0), round_even((w - size) / 2.0), size, size};
}

CropBox random_resized_crop_box(int64_t h, int64_t w, Generator& gen, std::pair<double, double> scale,
                                std::pair<double, double> ratio) {
  if (h < 1 || w < 1) throw std::invalid_argument("random_resized_crop_box: image size " + size_str(h, w) + " must be positive");
  if (!(scale.first > 0 && scale.first <= scale.second)) {
    throw std::invalid_argument("random_resized_crop_box: scale (" + std::to_string(scale.first) + ", " +
                                std::to_string(scale.second) + ") must satisfy 0 < low <= high");
  }
  if (!(ratio.first > 0 && ratio.first <= ratio.second)) {
    throw std::invalid_argument("random_resized_crop_box: ratio (" + std::to_string(ratio.first) + ", " +
                                std::to_string(ratio.second) + ") must satisfy 0 < low <= high");
  }
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double log_r0 = std::log(ratio.first), log_r1 = std::log(ratio.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    // Two uniforms per attempt (one for the area, one for the aspect), then two integers if it fits.
    const std::vector<double> u = ops::rand({2}, DType::Float64, &gen).to_vector<double>();
    const double target_area = area * (scale.first + (scale.second - scale.first) * u[0]);
    const double aspect = std::exp(log_r0 + (log_r1 - log_r0) * u[1]);  // log-uniform: 3/4 and 4/3 equally likely
    const int64_t bw = round_even(std::sqrt(target_area * aspect));
    const int64_t bh = round_even(std::sqrt(target_area / aspect));
    if (bw > 0 && bw <= w && bh > 0 && bh <= h) {
      const int64_t y = static_cast<int64_t>(ops::randint(0, h - bh + 1, {1}, &gen).item());
      const int64_t x = static_cast<int64_t>(ops::randint(0, w - bw + 1, {1}, &gen).item());
      return {y, x, bh, bw};
    }
  }
  // Fallback: a central crop whose aspect is the image's, clamped into [ratio.first, ratio.second].
  const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  int64_t bw = w, bh = h;
  if (in_ratio < ratio.first) {
    bh = std::clamp<int64_t>(round_even(static_cast<double>(w) / ratio.first), 1, h);
  } else if (in_ratio > ratio.second) {
    bw = std::clamp<int64_t>(round_even(static_cast<double>(h) * ratio.second), 1, w);
  }
  return {(h - bh) / 2, (w - bw) / 2, bh, bw};
}

Image hflip(const Image& image) {
  Image out = image;
  for (int64_t y = 0; y < image.height; ++y) {
    for (int64_t x = 0; x < image.width; ++x) std::copy_n(image.at(y, image.width - 1 - x), 3, out.at(y, x));
  }
  return out;
}

Tensor transform_clip(const std::vector<Image>& frames, const ClipTransform& options, Generator* gen) {
  check_same_size(frames, "transform_clip");
  if (options.size < 1) throw std::invalid_argument("transform_clip: size " + std::to_string(options.size) + " must be >= 1");
  if (!(options.min_scale > 0.0 && options.min_scale <= 1.0)) {
    throw std::invalid_argument("transform_clip: min_scale " + std::to_string(options.min_scale) + " must be in (0, 1]");
  }
  const int64_t H = frames[0].height, W = frames[0].width, S = options.size;

  // One box and one flip decision for the whole clip.
  CropBox box;
  bool flip = false;
  if (options.train) {
    Generator& g = gen != nullptr ? *gen : default_generator();
    box = random_resized_crop_box(H, W, g, {options.min_scale, 1.0});
    if (options.flip) flip = ops::rand({1}, DType::Float64, &g).item() < 0.5;
  } else {
    box = center_crop_box(H, W, std::min(H, W));
  }

  std::vector<Image> out;
  out.reserve(frames.size());
  for (const Image& frame : frames) {
    Image f = resize_bilinear(crop(frame, box), S, S);
    out.push_back(flip ? hflip(f) : std::move(f));
  }
  return to_normalized_tensor(out);
}

Tensor normalize_clip(const std::vector<Image>& frames) {
  check_same_size(frames, "normalize_clip");
  return to_normalized_tensor(frames);
}

}  // namespace glance::rlt
