#include "rlt/embeddings.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "autograd/functions.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "tensor/ops.h"

namespace glance::rlt {

TubeletProjection::TubeletProjection(int64_t c, int64_t u, int64_t p, int64_t d) {
  weight = register_parameter("weight", ops::empty({d, c, u, p, p}));
  bias = register_parameter("bias", ops::empty({d}));
  // PyTorch's Conv3d default: U(+-1/sqrt(fan_in)), fan_in = C*u*p*p.
  const double bound = 1.0 / std::sqrt(static_cast<double>(c * u * p * p));
  nn::init::uniform_(weight, -bound, bound);
  nn::init::uniform_(bias, -bound, bound);
}

TubeletEmbedding::TubeletEmbedding(int64_t c, int64_t u, int64_t p, int64_t d)
    : proj(register_module("proj", std::make_shared<TubeletProjection>(c, u, p, d))), weight(proj->weight), bias(proj->bias) {}

void TubeletEmbedding::init_central_frame(const Tensor& patch_weight) {
  const int64_t D = weight.size(0), C = weight.size(1), u = weight.size(2), p = weight.size(3);
  if (patch_weight.shape() != Shape{D, C, p, p}) {
    throw std::invalid_argument("TubeletEmbedding::init_central_frame: expected a 2-D kernel [" + std::to_string(D) +
                                ", " + std::to_string(C) + ", " + std::to_string(p) + ", " + std::to_string(p) +
                                "], got " + shape_str(patch_weight.shape()));
  }
  ops::fill_(weight, 0.0);
  ops::copy_(ops::select(weight, 2, u / 2), patch_weight);  // weight[:, :, u/2] = E2D
}

void TubeletEmbedding::init_central_frame() {
  const int64_t D = weight.size(0), C = weight.size(1), p = weight.size(3);
  Tensor patch_weight = ops::empty({D, C, p, p});
  const double bound = 1.0 / std::sqrt(static_cast<double>(C * p * p));
  nn::init::uniform_(patch_weight, -bound, bound);
  init_central_frame(patch_weight);
}

Tensor TubeletEmbedding::forward(const Tensor& tubelets) const {
  if (tubelets.dim() != 2 || tubelets.size(1) != input_size()) {
    throw std::invalid_argument("TubeletEmbedding: expected tubelets [N, " + std::to_string(input_size()) + "], got " +
                                shape_str(tubelets.shape()));
  }
  return nn::linear(tubelets, reshape(weight, {weight.size(0), -1}), bias);
}

Tensor sinusoid_table(int64_t positions, int64_t dim, double base) {
  std::vector<float> v(static_cast<size_t>(positions * dim));
  for (int64_t pos = 0; pos < positions; ++pos) {
    for (int64_t j = 0; j < dim; ++j) {
      const double angle = double(pos) / std::pow(base, 2.0 * double(j / 2) / double(dim));
      v[pos * dim + j] = static_cast<float>(j % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return ops::from_vector(v, {positions, dim});
}

Tensor sinusoid_table_3d(const nn::Grid& g, int64_t dim, double base) {
  const int64_t dt = (dim / 3) / 2 * 2, dh = dt, dw = dim - dt - dh;
  const Tensor ft = sinusoid_table(g.t, dt, base), fh = sinusoid_table(g.h, dh, base), fw = sinusoid_table(g.w, dw, base);
  std::vector<float> v(static_cast<size_t>(g.size() * dim));
  for (int64_t t = 0; t < g.t; ++t)
    for (int64_t h = 0; h < g.h; ++h)
      for (int64_t w = 0; w < g.w; ++w) {
        float* row = &v[g.index(t, h, w) * dim];
        std::copy_n(ft.data<float>() + t * dt, dt, row);
        std::copy_n(fh.data<float>() + h * dh, dh, row + dt);
        std::copy_n(fw.data<float>() + w * dw, dw, row + dt + dh);
      }
  return ops::from_vector(v, {g.size(), dim});
}

Tensor positional_encoding(const Tensor& table, const nn::TokenLayout& layout) {
  const nn::Grid& g = layout.grid();
  if (table.size(0) < g.size()) {
    throw std::invalid_argument("positional_encoding: table of " + std::to_string(table.size(0)) +
                                " rows for a grid of " + std::to_string(g.size()) + " positions");
  }
  // Each token's row (t * H' + h) * W' + w, from the layout's per-device copy (one upload per batch, shared
  // with the length encoding and the attention layers). The layout checked every coordinate against the grid
  // and the table has a row per grid position, so no read-back for a bounds check.
  const Tensor rows = layout.indices_on(table.device()).position;
  return ops::index_select(table, 0, rows, ops::IndexCheck::AlreadyChecked);
}

LengthEncoding::LengthEncoding(int64_t max_length, int64_t dim) {
  weight = register_parameter("weight", ops::zeros({max_length, dim}));
  nn::init::trunc_normal_(weight, 0.02);
}

Tensor LengthEncoding::forward(const nn::TokenLayout& layout) const {
  const int64_t n = layout.total_tokens(), max_length = weight.size(0);
  const int32_t* length = layout.length().data<int32_t>();  // the host copy: checked here, where it is free
  for (int64_t i = 0; i < n; ++i) {
    if (length[i] < 1 || length[i] > max_length) {
      throw std::invalid_argument("LengthEncoding: token " + std::to_string(i) + " has run length " +
                                  std::to_string(length[i]) + ", outside 1.." + std::to_string(max_length));
    }
  }
  // Row length - 1 of the table, computed on the weight's device from the layout's per-device lengths (one
  // upload per batch, shared with the positional encoding and the attention layers).
  const Tensor rows = ops::binary(BinaryOp::Sub, layout.indices_on(weight.device()).length, 1.0);
  return glance::index_select(weight, 0, rows, ops::IndexCheck::AlreadyChecked);  // autograd: weight learns
}

}  // namespace glance::rlt
