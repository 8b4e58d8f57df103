// Frame transforms: from decoded frames (Image, uint8 RGB [H, W, 3]) to the network's input tensor.
//
//   frames (T Images, H x W)  --crop box (same for every frame)-->  crop  --resize_bilinear-->  S x S
//     --optional horizontal flip (same for every frame)-->  normalise  -->  float32 Tensor [T, 3, S, S]
//
// One crop box and one flip decision per clip, never per frame: the run-length tokenizer compares
// patches at the same place in consecutive frames, and a per-frame jitter would make every patch look
// "changed".
#pragma once
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "rlt/image.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace glance::rlt {

// ImageNet statistics per channel (R, G, B), for pixel values scaled to [0, 1].
inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

// Bilinear resize with half-pixel centres, the formula of PyTorch's
// F.interpolate(x.float(), size, mode="bilinear", align_corners=False, antialias=False):
//   src = (dst + 0.5) * in / out - 0.5, clamped below at 0;  i0 = floor(src), i1 = min(i0 + 1, in - 1),
//   w1 = src - i0, w0 = 1 - w1;  out = w0y * (w0x * p[i0y][i0x] + w1x * p[i0y][i1x]) + w1y * (...i1y...).
// Computed in float32 like PyTorch's CPU kernel, then rounded to the nearest uint8 with ties to even
// (torch.round) and clamped to [0, 255]. No antialiasing: a strong downsample skips pixels (aliasing),
// exactly as antialias=False does.
Image resize_bilinear(const Image& image, int64_t height, int64_t width);

struct CropBox {
  int64_t y = 0, x = 0;           // top-left corner
  int64_t height = 0, width = 0;  // size, each >= 1
};

// The pixels inside `box`. Throws std::invalid_argument if the box is empty or not inside the image.
Image crop(const Image& image, const CropBox& box);

// A size x size box centred in an h x w image, like torchvision's CenterCrop: top = round((h - size) / 2)
// with ties to even (Python's round), left likewise. Requires 1 <= size <= min(h, w) (no padding).
// transform_clip's evaluation path uses size = min(h, w): the largest centred square, which then resized
// to S x S equals the usual "resize the short side to S, centre-crop S x S" up to sub-pixel alignment.
CropBox center_crop_box(int64_t h, int64_t w, int64_t size);

// torchvision's RandomResizedCrop.get_params: up to 10 attempts of
//   area = h * w * U(scale),  aspect = exp(U(log ratio.first, log ratio.second)),
//   box width = round(sqrt(area * aspect)), height = round(sqrt(area / aspect))   (ties to even)
// accepted when it fits, placed at a uniform random top-left corner. If no attempt fits: a central crop
// with the aspect clamped into `ratio` (the whole image when its aspect is already inside).
// scale = (0.5, 1.0) by default, as in the RLT training code (torchvision's default is (0.08, 1.0)).
CropBox random_resized_crop_box(int64_t h, int64_t w, Generator& gen, std::pair<double, double> scale = {0.5, 1.0},
                                std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0});

Image hflip(const Image& image);  // mirror left-right

struct ClipTransform {
  int64_t size = 224;       // S: output frames are S x S
  bool train = false;       // train: random resized crop (+ flip); eval: centre square
  double min_scale = 0.5;   // train: the crop keeps between min_scale and all of the image's area
  bool flip = true;         // train: horizontal flip with probability 0.5
};

// The whole pipeline above, for one clip: float32 Tensor [T, 3, S, S], ImageNet-normalised. All frames
// must have the same size. `gen` drives the training randomness (the default generator when null);
// evaluation draws nothing. Random draws, in order: the crop box, then the flip.
Tensor transform_clip(const std::vector<Image>& frames, const ClipTransform& options, Generator* gen = nullptr);

// Frames as they are (no crop, no resize): float32 Tensor [T, 3, H, W] with
// value = (pixel / 255 - kImageNetMean[c]) / kImageNetStd[c]. All frames must have the same size.
Tensor normalize_clip(const std::vector<Image>& frames);

}  // namespace glance::rlt
