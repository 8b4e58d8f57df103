#include "nn/functional/grid_sample.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace glance::nn {

namespace {

// A tensor's values as doubles on the host (detached: reading positions records nothing).
std::vector<double> host_values(const Tensor& t) {
  return ops::to_device(ops::to_dtype(t.detach(), DType::Float64), Device::cpu()).to_vector<double>();
}

// Host values as a constant tensor of `like`'s dtype and device.
Tensor constant_like(const Tensor& like, const std::vector<double>& values, const Shape& shape) {
  return ops::to_device(ops::to_dtype(ops::from_vector(values, shape), like.dtype()), like.device());
}

// The bilinear read shared by both public functions.
//   rows [N, C]: the pixels of one or more H x W maps, one row per pixel, row-major; point p's map
//                starts at row base[p].
//   y, x [P]:    the positions in pixel units (differentiable).
// Returns [P, C].
Tensor bilinear_rows(const Tensor& rows, int64_t H, int64_t W, const std::vector<int64_t>& base, const Tensor& y,
                     const Tensor& x, const char* op) {
  const int64_t P = y.numel(), C = rows.size(1);
  const std::vector<double> ys = host_values(y), xs = host_values(x);

  // On the host: the top-left corner (y0, x0) of each point, and for its 4 neighbours (corner c = 2*dy + dx)
  // the row to read and whether it lies inside the map. Entry [c * P + p].
  std::vector<double> y0(P), x0(P), inside(4 * P);
  std::vector<int64_t> index(4 * P);
  for (int64_t p = 0; p < P; ++p) {
    if (!std::isfinite(ys[p]) || !std::isfinite(xs[p])) {
      throw std::invalid_argument(std::string(op) + ": sampling position " + std::to_string(p) + " is not finite");
    }
    y0[p] = std::floor(ys[p]);
    x0[p] = std::floor(xs[p]);
    for (int64_t c = 0; c < 4; ++c) {
      const double yy = y0[p] + c / 2, xx = x0[p] + c % 2;  // compared as doubles: far-away points never overflow
      const bool in = yy >= 0 && yy < H && xx >= 0 && xx < W;
      inside[c * P + p] = in ? 1.0 : 0.0;
      // An outside neighbour reads row 0 of its map (any valid row): its weight is 0 below.
      index[c * P + p] = base[p] + (in ? static_cast<int64_t>(yy) * W + static_cast<int64_t>(xx) : 0);
    }
  }

  // The fractional parts, differentiable in y and x: the floors are constants. fy, fx in [0, 1), [P].
  Tensor fy = y - constant_like(y, y0, {P});
  Tensor fx = x - constant_like(x, x0, {P});
  Tensor gy = 1.0 - fy, gx = 1.0 - fx;
  // [4, P]: the bilinear weights of the corners (0,0), (0,1), (1,0), (1,1), zeroed outside the map.
  Tensor weights = stack({gy * gx, gy * fx, fy * gx, fy * fx}, 0) * constant_like(y, inside, {4, P});

  // [N, C] -> the 4 neighbours' rows [4 * P, C] -> [4, P, C]; weighted sum over the corners -> [P, C].
  Tensor idx = ops::to_device(ops::from_vector(index, {4 * P}), rows.device());
  Tensor corners = reshape(index_select(rows, 0, idx), {4, P, C});
  return sum(corners * unsqueeze(weights, 2), {0});
}

void check_same_dtype_device(const Tensor& a, const Tensor& b, const char* op, const char* a_name,
                             const char* b_name) {
  if (a.dtype() != b.dtype() || a.device() != b.device()) {
    throw std::invalid_argument(std::string(op) + ": " + a_name + " (" + dtype_name(a.dtype()) + " on " +
                                a.device().str() + ") and " + b_name + " (" + dtype_name(b.dtype()) + " on " +
                                b.device().str() + ") must have the same dtype and device");
  }
}

}  // namespace

Tensor grid_sample(const Tensor& input, const Tensor& grid, bool align_corners) {
  if (input.dim() != 4 || input.size(2) < 1 || input.size(3) < 1) {
    throw std::invalid_argument("grid_sample: expected input [B, C, H, W] with H, W >= 1, got " +
                                shape_str(input.shape()));
  }
  if (grid.dim() != 4 || grid.size(3) != 2 || grid.size(0) != input.size(0)) {
    throw std::invalid_argument("grid_sample: expected grid [B, Ho, Wo, 2] with B = " + std::to_string(input.size(0)) +
                                " (input " + shape_str(input.shape()) + "), got " + shape_str(grid.shape()));
  }
  check_same_dtype_device(input, grid, "grid_sample", "input", "grid");
  const int64_t B = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t Ho = grid.size(1), Wo = grid.size(2), P = B * Ho * Wo;

  // grid (x, y) in [-1, 1] -> pixel units, [P] each.
  Tensor gx = reshape(select(grid, 3, 0), {P});
  Tensor gy = reshape(select(grid, 3, 1), {P});
  Tensor px = align_corners ? (gx + 1.0) * (0.5 * static_cast<double>(W - 1))
                            : ((gx + 1.0) * static_cast<double>(W) - 1.0) * 0.5;
  Tensor py = align_corners ? (gy + 1.0) * (0.5 * static_cast<double>(H - 1))
                            : ((gy + 1.0) * static_cast<double>(H) - 1.0) * 0.5;

  // Channels last, one row per pixel: [B, C, H, W] -> [B, H, W, C] -> [B*H*W, C]; image b starts at row b*H*W.
  Tensor rows = reshape(permute(input, {0, 2, 3, 1}), {B * H * W, C});
  std::vector<int64_t> base(P);
  for (int64_t p = 0; p < P; ++p) base[p] = (p / (Ho * Wo)) * H * W;

  // [P, C] -> [B, Ho, Wo, C] -> [B, C, Ho, Wo] (a permuted view).
  Tensor out = bilinear_rows(rows, H, W, base, py, px, "grid_sample");
  return permute(reshape(out, {B, Ho, Wo, C}), {0, 3, 1, 2});
}

Tensor bilinear_sample_points(const Tensor& map, const Tensor& points) {
  if (map.dim() != 3 || map.size(0) < 1 || map.size(1) < 1) {
    throw std::invalid_argument("bilinear_sample_points: expected map [H, W, C] with H, W >= 1, got " +
                                shape_str(map.shape()));
  }
  if (points.dim() != 2 || points.size(1) != 2) {
    throw std::invalid_argument("bilinear_sample_points: expected points [P, 2] as (y, x), got " +
                                shape_str(points.shape()));
  }
  check_same_dtype_device(map, points, "bilinear_sample_points", "map", "points");
  const int64_t H = map.size(0), W = map.size(1), C = map.size(2), P = points.size(0);
  return bilinear_rows(reshape(map, {H * W, C}), H, W, std::vector<int64_t>(P, 0), select(points, 1, 0),
                       select(points, 1, 1), "bilinear_sample_points");
}

}  // namespace glance::nn
