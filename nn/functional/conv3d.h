// 3-D convolution of video-shaped tensors, built from differentiable ops (no conv kernel of its own).
//
//   x [B, C, T, H, W]  (*)  weight [C_out, C/groups, kt, kh, kw]  (+ bias [C_out])  ->  [B, C_out, To, Ho, Wo]
//
// PyTorch's layout and semantics (torch.nn.functional.conv3d with dilation 1): zero padding, a stride
// and a padding per axis (t, h, w), and groups (groups = C = C_out is a depthwise conv).
//
// The method is im2col: unfold3d copies every kernel window into a column, by one index_select with an
// index built on the host, and then one batched matmul per group applies the weights. Both are
// differentiable glance functions, so the gradients (x, weight, bias) come from their backward rules
// and the conv runs on every device that has those ops. See docs/primitives-spatial.md.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "autograd/functions.h"

namespace glance::nn {

// Three sizes in the order of the spatial axes: (t, h, w).
using Size3 = std::array<int64_t, 3>;
std::string size3_str(const Size3& s);  // "(2, 3, 3)", for error messages

struct Conv3dOptions {
  Size3 stride{1, 1, 1};
  Size3 padding{0, 0, 0};  // zeros added on both sides of each axis
  int64_t groups = 1;      // C and C_out must both be divisible by it
};

// bias may be undefined (no bias).
Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dOptions& options = {});

// The output size along each of (t, h, w): (in + 2 * padding - kernel) / stride + 1.
// Throws, naming `op` and the shapes, when a kernel is larger than its padded input or a size is invalid.
Size3 conv3d_output_size(const Shape& x_shape, const Size3& kernel, const Size3& stride, const Size3& padding,
                         const char* op = "unfold3d");

// im2col for 3-D windows ("unfold"): every (kt, kh, kw) window of the input padded with `pad_value`,
//
//   x [B, C, T, H, W]  ->  windows [B, C, kt*kh*kw, To, Ho, Wo]
//   windows[b, c, (i*kh + j)*kw + k, o, p, q] = x_padded[b, c, o*st + i, p*sh + j, q*sw + k]
//
// Differentiable in x (gradients of overlapping windows add up). A conv is then a matmul over (c, k);
// a pooling is a reduction over axis 2. Max pooling pads with -infinity, convolution with 0.
Tensor unfold3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding,
                double pad_value = 0.0);

}  // namespace glance::nn
