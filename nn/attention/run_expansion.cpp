#include "nn/attention/run_expansion.h"

#include <stdexcept>
#include <string>

#include "autograd/functions.h"

namespace glance::nn {

Tensor RunExpansion::cover_index() const { return ops::from_vector(cover); }
Tensor RunExpansion::cell_index() const { return ops::from_vector(cell); }

RunExpansion run_expansion(const TokenLayout& layout, const char* who) {
  RunExpansion e;
  e.batch = layout.batch_size();
  e.grid = layout.grid();
  const Grid& g = e.grid;
  const int64_t S = g.size(), N = layout.total_tokens();
  const int32_t* t = layout.t().data<int32_t>();
  const int32_t* h = layout.h().data<int32_t>();
  const int32_t* w = layout.w().data<int32_t>();
  const int32_t* length = layout.length().data<int32_t>();
  e.cover.assign(static_cast<size_t>(e.batch * S), -1);
  e.cell.resize(static_cast<size_t>(N));
  for (int64_t b = 0; b < e.batch; ++b) {
    for (int64_t i = layout.clip_begin(b); i < layout.clip_begin(b) + layout.clip_tokens(b); ++i) {
      e.cell[i] = b * S + g.index(t[i], h[i], w[i]);
      for (int64_t r = 0; r < length[i]; ++r) {  // the cells (t .. t+l-1, h, w) of the run
        const int64_t ti = t[i] + r;
        if (ti >= g.t) break;
        int64_t& slot = e.cover[b * S + g.index(ti, h[i], w[i])];
        if (slot >= 0) {
          throw std::invalid_argument(std::string(who) + ": clip " + std::to_string(b) + " cell (t, h, w) = (" +
                                      std::to_string(ti) + ", " + std::to_string(h[i]) + ", " + std::to_string(w[i]) +
                                      ") is covered by two runs (tokens " + std::to_string(slot) + " and " +
                                      std::to_string(i) + ")");
        }
        slot = i;
      }
    }
  }
  for (int64_t c = 0; c < e.batch * S; ++c) {
    if (e.cover[c] < 0) {
      const int64_t b = c / S, r = c % S;
      throw std::invalid_argument(std::string(who) + ": clip " + std::to_string(b) + " cell (t, h, w) = (" +
                                  std::to_string(r / (g.h * g.w)) + ", " + std::to_string(r / g.w % g.h) + ", " +
                                  std::to_string(r % g.w) +
                                  ") is covered by no token's run (the design needs a run-length layout: "
                                  "every cell covered, t = 0 kept)");
    }
  }
  e.identity = N == e.batch * S;
  for (int64_t c = 0; e.identity && c < N; ++c) e.identity = e.cover[c] == c;
  return e;
}

Tensor densify(const Tensor& rows, int64_t axis, const RunExpansion& e) {
  if (e.identity) return rows;
  return index_select(rows, axis, ops::to_device(e.cover_index(), rows.device()));
}

Tensor at_tokens(const Tensor& dense, int64_t axis, const RunExpansion& e) {
  if (e.identity) return dense;
  return index_select(dense, axis, ops::to_device(e.cell_index(), dense.device()));
}

}  // namespace glance::nn
