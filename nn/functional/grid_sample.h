// Bilinear sampling of feature maps at real-valued positions, built from differentiable ops.
//
// A position (y, x) in pixel units, with pixel (i, j) centred at (i, j), reads its four neighbours
//   y0 = floor(y), x0 = floor(x), fy = y - y0, fx = x - x0
//   out = (1-fy)(1-fx) map[y0, x0] + (1-fy) fx map[y0, x0+1] + fy (1-fx) map[y0+1, x0] + fy fx map[y0+1, x0+1]
// where a neighbour outside the map counts as 0 (zero padding).
//
// Gradients: the output is linear in the map (each neighbour gets its weight's share of the gradient)
// and, between integers, linear in fy and fx, so d out / d y = (1-fx)(map[y0+1,x0] - map[y0,x0]) +
// fx (map[y0+1,x0+1] - map[y0,x0+1]), and likewise for x. The integer corners are read on the host
// and are constants: they carry no gradient (the derivative of floor is 0 almost everywhere).
#pragma once
#include "autograd/functions.h"

namespace glance::nn {

// torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners):
//   input [B, C, H, W], grid [B, Ho, Wo, 2] holding (x, y) in [-1, 1]  ->  [B, C, Ho, Wo]
// Normalised to pixel units:
//   align_corners = true:   -1 and 1 are the centres of the corner pixels:   x_px = (x + 1) / 2 * (W - 1)
//   align_corners = false:  -1 and 1 are the outer edges of the corner pixels: x_px = ((x + 1) * W - 1) / 2
// Differentiable in input and in grid. Both must have the same dtype and device.
Tensor grid_sample(const Tensor& input, const Tensor& grid, bool align_corners);

// The same bilinear read on one map in pixel units, for layers that sample points directly
// (deformable attention):  map [H, W, C], points [P, 2] holding (y, x)  ->  [P, C].
// points (i, j) with integers reads map[i, j] exactly; outside neighbours count as 0.
// Differentiable in map and in points.
Tensor bilinear_sample_points(const Tensor& map, const Tensor& points);

}  // namespace glance::nn
