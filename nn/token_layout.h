// TokenLayout: how the tokens of several clips are packed into one sequence.
//
//   x: [N_total, D]  = clip 0's tokens, then clip 1's, ...
//   cu_seqlens  int32 [B+1]      clip b owns tokens [cu_seqlens[b], cu_seqlens[b+1])
//   t, h, w     int32 [N_total]  each token's grid position (for RLT: where its run starts)
//   length      int32 [N_total]  run length in tubelets (1 for every token of a dense clip)
//   grid        (T', H', W')     the full token grid of one clip
//
// Attention uses it to keep clips apart (a token attends only within its clip: a block-diagonal mask).
// A dense batch is the case where every clip has all T'H'W' tokens and every length is 1, so dense and
// RLT batches share one code path. All tensors live on the CPU (they are small and read by loops).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace glance::nn {

// A clip's token grid, T' x H' x W'. Cells are numbered in (t, h, w) row-major order: that number is the
// row of a grid-sized table (positional encodings, run-length maps) and a dense clip's token order.
struct Grid {
  int64_t t = 1, h = 1, w = 1;
  int64_t size() const { return t * h * w; }
  int64_t index(int64_t ti, int64_t hi, int64_t wi) const { return (ti * h + hi) * w + wi; }  // in [0, size())
  bool operator==(const Grid&) const = default;
};
std::string to_string(const Grid& g);  // "T x H x W", for messages

class TokenLayout {
 public:
  TokenLayout() = default;
  // From per-clip token counts, with coordinates and lengths given (each [N_total]).
  TokenLayout(const std::vector<int64_t>& tokens_per_clip, Tensor t, Tensor h, Tensor w, Tensor length, Grid grid);

  // B full clips of `grid`: tokens in (t, h, w) row-major order, every length 1.
  static TokenLayout dense(int64_t batch, Grid grid);
  // Clips of the given token counts on a 1 x 1 x max grid (coordinates = position in the clip), for
  // sequences that have no video grid (tests, images flattened to patches).
  static TokenLayout from_counts(const std::vector<int64_t>& tokens_per_clip);

  int64_t batch_size() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t total_tokens() const { return offsets_.empty() ? 0 : offsets_.back(); }
  int64_t clip_begin(int64_t b) const { return offsets_.at(b); }
  int64_t clip_tokens(int64_t b) const { return offsets_.at(b + 1) - offsets_.at(b); }
  int64_t max_tokens() const;
  const std::vector<int64_t>& offsets() const { return offsets_; }  // cu_seqlens as host integers

  Tensor cu_seqlens() const;    // int32 [B+1]

  // The integers that layers index with, on one device. All three go up in ONE copy on the first call for a
  // device and are kept: the attention layers, the positional encoding and the length encoding of a step all
  // ask for them, and every upload from host memory makes the host wait for the GPU's queue to drain. (The
  // cache is not locked: a layout is used by one thread at a time.)
  struct DeviceIndices {
    Tensor cu_seqlens;  // int32 [B+1]
    Tensor position;    // int64 [N_total]: (t * H' + h) * W' + w, a row of a grid-sized table, in [0, grid.size())
    Tensor length;      // int64 [N_total]: the run lengths, >= 1
  };
  DeviceIndices indices_on(Device device) const;  // handles to the cached tensors
  Tensor cu_seqlens_on(Device device) const { return indices_on(device).cu_seqlens; }
  Tensor clip_of_token() const; // int64 [N_total]: which clip each token belongs to
  const Tensor& t() const { return t_; }
  const Tensor& h() const { return h_; }
  const Tensor& w() const { return w_; }
  const Tensor& length() const { return length_; }
  const Grid& grid() const { return grid_; }

  // Throws naming the problem (counts negative, coordinates off the grid, lengths < 1, sizes differ).
  void validate() const;

 private:
  std::vector<int64_t> offsets_{0};
  Tensor t_, h_, w_, length_;
  Grid grid_;
  mutable std::vector<std::pair<Device, DeviceIndices>> indices_cache_;  // indices_on's uploads, one per device
};

}  // namespace glance::nn
