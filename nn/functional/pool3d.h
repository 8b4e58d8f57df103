// 3-D max and average pooling over (t, h, w) windows, built on unfold3d (nn/functional/conv3d.h):
//
//   x [B, C, T, H, W] -> unfold3d -> windows [B, C, kt*kh*kw, To, Ho, Wo] -> max or mean over axis 2
//                     -> [B, C, To, Ho, Wo],   To = (T + 2*pt - kt) / st + 1 (and so for h, w)
//
// PyTorch semantics (torch.nn.functional.max_pool3d / avg_pool3d with dilation 1, ceil_mode=False):
// torch's stride defaults to the kernel; here it is always passed. Padding is at most half the kernel,
// as torch requires, so every window holds at least one real input element.
//  - max_pool3d pads with -infinity, so padding is never the maximum.
//  - avg_pool3d pads with 0 and divides by kt*kh*kw everywhere (torch's default count_include_pad=True).
//
// Departure from torch: when several elements of a window tie for the maximum, our max reduction shares
// the gradient equally between them; torch sends all of it to one of them. The values are the same.
#pragma once
#include "nn/functional/conv3d.h"

namespace glance::nn {

Tensor max_pool3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding = {0, 0, 0});
Tensor avg_pool3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding = {0, 0, 0});

}  // namespace glance::nn
