#include "nn/token_layout.h"

#include <algorithm>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::nn {

std::string to_string(const Grid& g) {
  return std::to_string(g.t) + " x " + std::to_string(g.h) + " x " + std::to_string(g.w);
}

TokenLayout::TokenLayout(const std::vector<int64_t>& tokens_per_clip, Tensor t, Tensor h, Tensor w, Tensor length,
                         Grid grid)
    : t_(std::move(t)), h_(std::move(h)), w_(std::move(w)), length_(std::move(length)), grid_(grid) {
  offsets_.assign(1, 0);
  for (int64_t n : tokens_per_clip) {
    if (n < 0) throw std::invalid_argument("TokenLayout: negative token count " + std::to_string(n));
    offsets_.push_back(offsets_.back() + n);
  }
  validate();
}

TokenLayout TokenLayout::dense(int64_t batch, Grid grid) {
  int64_t n = grid.size();
  std::vector<int32_t> t, h, w;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < grid.t; ++i)
      for (int64_t j = 0; j < grid.h; ++j)
        for (int64_t k = 0; k < grid.w; ++k) {
          t.push_back(static_cast<int32_t>(i));
          h.push_back(static_cast<int32_t>(j));
          w.push_back(static_cast<int32_t>(k));
        }
  }
  return TokenLayout(std::vector<int64_t>(batch, n), ops::from_vector(t), ops::from_vector(h), ops::from_vector(w),
                     ops::ones({batch * n}, DType::Int32), grid);
}

TokenLayout TokenLayout::from_counts(const std::vector<int64_t>& tokens_per_clip) {
  int64_t longest = 1;
  std::vector<int32_t> w;
  for (int64_t n : tokens_per_clip) {
    longest = std::max(longest, n);
    for (int64_t i = 0; i < n; ++i) w.push_back(static_cast<int32_t>(i));
  }
  Tensor zeros = ops::zeros({static_cast<int64_t>(w.size())}, DType::Int32);
  return TokenLayout(tokens_per_clip, zeros, ops::clone(zeros), ops::from_vector(w),
                     ops::ones({static_cast<int64_t>(w.size())}, DType::Int32), Grid{1, 1, longest});
}

int64_t TokenLayout::max_tokens() const {
  int64_t m = 0;
  for (int64_t b = 0; b < batch_size(); ++b) m = std::max(m, clip_tokens(b));
  return m;
}

Tensor TokenLayout::cu_seqlens() const {
  std::vector<int32_t> v(offsets_.begin(), offsets_.end());
  return ops::from_vector(v);
}

TokenLayout::DeviceIndices TokenLayout::indices_on(Device device) const {
  for (const auto& [where, cached] : indices_cache_) {
    if (where == device) return cached;
  }
  // One int64 buffer [cu_seqlens (B+1) | positions (N) | lengths (N)], one copy, three views of it.
  // (validate() checked every coordinate against the grid, so each position is a valid table row.)
  const int64_t B = batch_size(), N = total_tokens();
  const auto t = t_.to_vector<int32_t>(), h = h_.to_vector<int32_t>(), w = w_.to_vector<int32_t>();
  const auto length = length_.to_vector<int32_t>();
  std::vector<int64_t> all(offsets_.begin(), offsets_.end());
  all.reserve(static_cast<size_t>(B + 1 + 2 * N));
  for (int64_t i = 0; i < N; ++i) all.push_back(grid_.index(t[i], h[i], w[i]));
  all.insert(all.end(), length.begin(), length.end());
  const Tensor on_device = ops::to_device(ops::from_vector(all), device);
  DeviceIndices d;
  d.cu_seqlens = ops::to_dtype(ops::narrow(on_device, 0, 0, B + 1), DType::Int32);  // converted on the device
  d.position = ops::narrow(on_device, 0, B + 1, N);
  d.length = ops::narrow(on_device, 0, B + 1 + N, N);
  indices_cache_.emplace_back(device, d);
  return indices_cache_.back().second;
}

Tensor TokenLayout::clip_of_token() const {
  std::vector<int64_t> v;
  v.reserve(total_tokens());
  for (int64_t b = 0; b < batch_size(); ++b) v.insert(v.end(), clip_tokens(b), b);
  return ops::from_vector(v, {total_tokens()});
}

void TokenLayout::validate() const {
  int64_t n = total_tokens();
  const char* names[] = {"t", "h", "w", "length"};
  const Tensor* fields[] = {&t_, &h_, &w_, &length_};
  const int64_t limits[] = {grid_.t, grid_.h, grid_.w, grid_.t + 1};
  for (int i = 0; i < 4; ++i) {
    const Tensor& f = *fields[i];
    if (!f.defined() || f.shape() != Shape{n} || f.dtype() != DType::Int32) {
      throw std::invalid_argument(std::string("TokenLayout: '") + names[i] + "' must be int32 [" + std::to_string(n) +
                                  "], got " + (f.defined() ? std::string(dtype_name(f.dtype())) + " " + shape_str(f.shape()) : "nothing"));
    }
    int64_t lo = i == 3 ? 1 : 0;
    for (int32_t v : f.to_vector<int32_t>()) {
      if (v < lo || v >= limits[i]) {
        throw std::invalid_argument(std::string("TokenLayout: '") + names[i] + "' value " + std::to_string(v) +
                                    " is outside [" + std::to_string(lo) + ", " + std::to_string(limits[i]) + ")");
      }
    }
  }
  // A run covers tubelets t .. t + length - 1 at its (h, w): it must end inside the grid.
  auto ts = t_.to_vector<int32_t>(), ls = length_.to_vector<int32_t>();
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i] + ls[i] > grid_.t) {
      throw std::invalid_argument("TokenLayout: token " + std::to_string(i) + " starts at t = " + std::to_string(ts[i]) +
                                  " with length " + std::to_string(ls[i]) + ", past the grid's " +
                                  std::to_string(grid_.t) + " time steps");
    }
  }
}

}  // namespace glance::nn
