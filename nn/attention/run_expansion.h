// Run-expansion: from a packed RLT batch back to the dense token grid of every clip.
//
// An RLT clip keeps only the first tubelet of each run of repeated tubelets (a token at (t, h, w) with run
// length l stands for the cells (t .. t+l-1, h, w)); t = 0 is always kept. Designs that need the full
// T' x H' x W' grid (a 3-D convolution, a bilinear read of a frame) rebuild it by copying each kept token
// into every cell of its run:
//
//   cover[b, t, h, w] = the kept token of clip b whose run covers (t, h, w)      (it exists: t = 0 is kept)
//   dense rows [B * T'H'W', ...] = index_select(token rows [N_total, ...], cover)
//
// and read a dense result back at the kept tokens' own cells:
//
//   cell[i] = b * T'H'W' + (t * H' + h) * W' + w      for token i of clip b at (t, h, w)
//
// Both are index_select, so gradients flow: the gradient of a token is the sum over the cells of its run.
// A dense batch (every clip all T'H'W' tokens in raster order, lengths 1) is the identity case.
#pragma once
#include <cstdint>
#include <vector>

#include "nn/token_layout.h"

namespace glance::nn {

struct RunExpansion {
  int64_t batch = 0;
  Grid grid;                   // of every clip
  std::vector<int64_t> cover;  // [B * T'H'W']: the token whose run covers each cell (clip-major raster order)
  std::vector<int64_t> cell;   // [N_total]: each token's own cell
  bool identity = false;       // the layout is already dense in raster order: cover[c] == c

  Tensor cover_index() const;  // int64 [B * T'H'W']
  Tensor cell_index() const;   // int64 [N_total]
};

// Throws, naming `who` and the cell, when a cell is covered by no run or by two runs (a layout that is
// not a run-length layout, e.g. one with a missing t = 0 token).
RunExpansion run_expansion(const TokenLayout& layout, const char* who);

// rows [..., N_total (on `axis`), ...] -> [..., B * T'H'W', ...]: each cell gets its covering token's row.
Tensor densify(const Tensor& rows, int64_t axis, const RunExpansion& expansion);
// dense [..., B * T'H'W', ...] -> [..., N_total, ...]: the rows of the tokens' own cells.
Tensor at_tokens(const Tensor& dense, int64_t axis, const RunExpansion& expansion);

}  // namespace glance::nn
