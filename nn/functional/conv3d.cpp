#include "nn/functional/conv3d.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace glance::nn {

std::string size3_str(const Size3& s) {
  std::string text = "(";
  for (int a = 0; a < 3; ++a) text += std::to_string(s[a]) + (a < 2 ? ", " : ")");
  return text;
}

namespace {

// The flat index, into x's spatial axes flattened to T*H*W plus one extra "padding slot" at T*H*W, that
// each window element reads. Entry [k * L + l] is kernel offset k = (i*kh + j)*kw + m at output position
// l = (o*Ho + p)*Wo + q, so index_select's result reshapes straight to [..., K, To, Ho, Wo].
std::vector<int64_t> window_index(const Shape& x_shape, const Size3& kernel, const Size3& stride,
                                  const Size3& padding, const Size3& out) {
  const int64_t T = x_shape[2], H = x_shape[3], W = x_shape[4];
  const int64_t pad_slot = T * H * W;
  std::vector<int64_t> index;
  index.reserve(kernel[0] * kernel[1] * kernel[2] * out[0] * out[1] * out[2]);
  for (int64_t i = 0; i < kernel[0]; ++i)
    for (int64_t j = 0; j < kernel[1]; ++j)
      for (int64_t m = 0; m < kernel[2]; ++m)
        for (int64_t o = 0; o < out[0]; ++o)
          for (int64_t p = 0; p < out[1]; ++p)
            for (int64_t q = 0; q < out[2]; ++q) {
              // Position in the unpadded input; outside it means "in the padding".
              const int64_t t = o * stride[0] + i - padding[0];
              const int64_t h = p * stride[1] + j - padding[1];
              const int64_t w = q * stride[2] + m - padding[2];
              const bool inside = t >= 0 && t < T && h >= 0 && h < H && w >= 0 && w < W;
              index.push_back(inside ? (t * H + h) * W + w : pad_slot);
            }
  return index;
}

}  // namespace

Size3 conv3d_output_size(const Shape& x_shape, const Size3& kernel, const Size3& stride, const Size3& padding,
                         const char* op) {
  const std::string name(op);
  if (x_shape.size() != 5) {
    throw std::invalid_argument(name + ": expected x [B, C, T, H, W], got " + shape_str(x_shape));
  }
  Size3 out{};
  for (int a = 0; a < 3; ++a) {
    if (kernel[a] < 1 || stride[a] < 1 || padding[a] < 0) {
      throw std::invalid_argument(name + ": kernel " + size3_str(kernel) + " and stride " + size3_str(stride) +
                                  " must be positive and padding " + size3_str(padding) + " non-negative");
    }
    const int64_t padded = x_shape[2 + a] + 2 * padding[a];
    if (kernel[a] > padded) {
      throw std::invalid_argument(name + ": kernel " + size3_str(kernel) + " is larger than the padded input (" +
                                  "x " + shape_str(x_shape) + " with padding " + size3_str(padding) + ")");
    }
    out[a] = (padded - kernel[a]) / stride[a] + 1;
  }
  return out;
}

Tensor unfold3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding, double pad_value) {
  const Size3 out = conv3d_output_size(x.shape(), kernel, stride, padding, "unfold3d");
  const int64_t B = x.size(0), C = x.size(1), S = x.size(2) * x.size(3) * x.size(4);
  const int64_t K = kernel[0] * kernel[1] * kernel[2];

  // Flatten (T, H, W) and append one slot holding pad_value: window elements that fall in the padding
  // all read that slot, so the padded input is never built. [B, C, S] ++ [B, C, 1] -> [B, C, S + 1]
  Tensor flat = reshape(x, {B, C, S});
  Tensor pad = ops::full({B, C, 1}, pad_value, x.dtype(), x.device());
  Tensor extended = concat({flat, pad}, 2);

  // One gather of every window element: [B, C, S + 1] -> [B, C, K * To*Ho*Wo]. Its backward adds the
  // gradient of each copy back where it came from, so overlapping windows sum (and the pad slot's share
  // is dropped by concat's backward).
  Tensor index = ops::to_device(ops::from_vector(window_index(x.shape(), kernel, stride, padding, out)), x.device());
  Tensor windows = index_select(extended, 2, index);
  return reshape(windows, {B, C, K, out[0], out[1], out[2]});
}

Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dOptions& options) {
  if (x.dim() != 5) throw std::invalid_argument("conv3d: expected x [B, C, T, H, W], got " + shape_str(x.shape()));
  if (weight.dim() != 5) {
    throw std::invalid_argument("conv3d: expected weight [C_out, C/groups, kt, kh, kw], got " +
                                shape_str(weight.shape()));
  }
  const int64_t G = options.groups, B = x.size(0), C = x.size(1), Co = weight.size(0);
  if (G < 1) throw std::invalid_argument("conv3d: groups must be positive, got " + std::to_string(G));
  if (C % G != 0 || Co % G != 0) {
    throw std::invalid_argument("conv3d: channels of x " + shape_str(x.shape()) + " and of weight " +
                                shape_str(weight.shape()) + " must both be divisible by groups = " + std::to_string(G));
  }
  if (weight.size(1) != C / G) {
    throw std::invalid_argument("conv3d: weight " + shape_str(weight.shape()) + " has " +
                                std::to_string(weight.size(1)) + " input channels per group, but x " +
                                shape_str(x.shape()) + " with groups = " + std::to_string(G) + " has " +
                                std::to_string(C / G));
  }
  if (bias.defined() && bias.shape() != Shape{Co}) {
    throw std::invalid_argument("conv3d: bias must be [C_out] = [" + std::to_string(Co) + "], got " +
                                shape_str(bias.shape()));
  }
  if (weight.dtype() != x.dtype() || (bias.defined() && bias.dtype() != x.dtype())) {
    throw std::invalid_argument(std::string("conv3d: x is ") + dtype_name(x.dtype()) + " but weight is " +
                                dtype_name(weight.dtype()) + (bias.defined() ? std::string(" and bias ") + dtype_name(bias.dtype()) : "") +
                                "; convert one with to_dtype");
  }
  const Size3 kernel{weight.size(2), weight.size(3), weight.size(4)};
  const Size3 out = conv3d_output_size(x.shape(), kernel, options.stride, options.padding, "conv3d");
  const int64_t Cg = C / G, Cog = Co / G, K = kernel[0] * kernel[1] * kernel[2], L = out[0] * out[1] * out[2];

  // im2col: [B, C, K, To, Ho, Wo]. Rows are in (c, k) order, so the Cg*K rows of group g are one block.
  Tensor cols = reshape(unfold3d(x, kernel, options.stride, options.padding, 0.0), {B, G, Cg * K, L});
  // The weight flattened in the same (c, k) order: [C_out, Cg, kt, kh, kw] -> [G, Cog, Cg*K].
  Tensor w = reshape(weight, {G, Cog, Cg * K});
  // One matmul per (batch, group); w's missing batch axis broadcasts:
  //   [G, Cog, Cg*K] @ [B, G, Cg*K, L] -> [B, G, Cog, L]
  // Depthwise (G = C = C_out) is the same call with Cg = Cog = 1: a dot product of length K per channel.
  Tensor y = reshape(matmul(w, cols), {B, Co, out[0], out[1], out[2]});  // output channel = g*Cog + co
  return bias.defined() ? y + reshape(bias, {1, Co, 1, 1, 1}) : y;
}

}  // namespace glance::nn
