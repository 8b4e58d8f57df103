#include "nn/attention/deformable.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "nn/attention/run_expansion.h"
#include "nn/functional/grid_sample.h"
#include "nn/init.h"

namespace glance::nn {

namespace {

// Host values as a constant tensor of `like`'s dtype and device.
Tensor constant_like(const Tensor& like, const std::vector<double>& values, const Shape& shape) {
  return ops::to_device(ops::to_dtype(ops::from_vector(values, shape), like.dtype()), like.device());
}

// A Bool tensor from host flags.
Tensor bool_mask(const std::vector<double>& flags, const Shape& shape, Device device) {
  return ops::to_device(ops::binary(BinaryOp::Gt, ops::from_vector(flags, shape), 0.5), device);
}

}  // namespace

// ---- the motion cue: block matching on the tokens ----

MotionField block_matching(const Tensor& features, int64_t batch, const Grid& g, int64_t search) {
  const int64_t cells = g.size();
  if (features.dim() != 2 || features.size(0) != batch * cells) {
    throw std::invalid_argument("block_matching: expected features [" + std::to_string(batch * cells) +
                                ", C] (dense clips of " + std::to_string(cells) + " cells), got " +
                                shape_str(features.shape()));
  }
  if (search < 0) throw std::invalid_argument("block_matching: search = " + std::to_string(search) + " must be >= 0");
  const int64_t C = features.size(1);
  const std::vector<double> f =
      ops::to_dtype(ops::contiguous(ops::to_device(features.detach(), Device::cpu())), DType::Float64)
          .to_vector<double>();
  // The candidate shifts, nearest first, so that on a tie the smaller shift wins (a static cell: 0).
  std::vector<std::array<int64_t, 2>> shifts;
  for (int64_t dy = -search; dy <= search; ++dy)
    for (int64_t dx = -search; dx <= search; ++dx) shifts.push_back({dy, dx});
  std::stable_sort(shifts.begin(), shifts.end(), [](const auto& a, const auto& b) {
    return a[0] * a[0] + a[1] * a[1] < b[0] * b[0] + b[1] * b[1];
  });

  MotionField m;
  m.batch = batch, m.grid = g;
  m.to_next.assign(static_cast<size_t>(2 * batch * cells), 0);
  m.to_prev.assign(static_cast<size_t>(2 * batch * cells), 0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < g.t; ++t)
      for (int64_t h = 0; h < g.h; ++h)
        for (int64_t w = 0; w < g.w; ++w) {
          const int64_t cell = b * cells + g.index(t, h, w);
          const double* a = &f[cell * C];
          for (int64_t dir : {1, -1}) {
            const int64_t t2 = t + dir;
            if (t2 < 0 || t2 >= g.t) continue;
            double best = std::numeric_limits<double>::infinity();
            std::array<int64_t, 2> best_shift{0, 0};
            for (const auto& s : shifts) {
              const int64_t h2 = h + s[0], w2 = w + s[1];
              if (h2 < 0 || h2 >= g.h || w2 < 0 || w2 >= g.w) continue;  // candidates stay inside the frame
              const double* c = &f[(b * cells + g.index(t2, h2, w2)) * C];
              double diff = 0;
              for (int64_t k = 0; k < C; ++k) diff += (a[k] - c[k]) * (a[k] - c[k]);
              if (diff < best) best = diff, best_shift = s;
            }
            std::vector<int64_t>& field = dir > 0 ? m.to_next : m.to_prev;
            field[2 * cell] = best_shift[0], field[2 * cell + 1] = best_shift[1];
          }
        }
  return m;
}

std::array<int64_t, 2> motion_displacement(const MotionField& m, int64_t b, int64_t t, int64_t h, int64_t w,
                                           int64_t t_to) {
  const Grid& g = m.grid;
  int64_t y = h, x = w;  // the tracked position; the vectors keep it inside the frame
  for (int64_t tau = t; tau != t_to; tau += t_to > t ? 1 : -1) {
    const int64_t cell = b * g.size() + g.index(tau, y, x);
    const std::vector<int64_t>& field = t_to > t ? m.to_next : m.to_prev;
    y += field[2 * cell], x += field[2 * cell + 1];
  }
  return {y - h, x - w};
}

// ---- the sampling-attention core ----

Tensor deformable_sampling_attention(const Tensor& values, const Tensor& positions, const Tensor& logits,
                                     const std::vector<int64_t>& frame) {
  if (values.dim() != 5) {
    throw std::invalid_argument("deformable_sampling_attention: expected values [H, F, H', W', d], got " +
                                shape_str(values.shape()));
  }
  const int64_t H = values.size(0), F = values.size(1), Hg = values.size(2), Wg = values.size(3), d = values.size(4);
  if (positions.dim() != 5 || positions.size(2) != H || positions.size(4) != 2) {
    throw std::invalid_argument("deformable_sampling_attention: expected positions [Nq, S, " + std::to_string(H) +
                                ", P, 2] (values " + shape_str(values.shape()) + "), got " +
                                shape_str(positions.shape()));
  }
  const int64_t Nq = positions.size(0), S = positions.size(1), P = positions.size(3);
  if (logits.shape() != Shape{Nq, S, H, P} || static_cast<int64_t>(frame.size()) != Nq * S) {
    throw std::invalid_argument("deformable_sampling_attention: expected logits [" + std::to_string(Nq) + ", " +
                                std::to_string(S) + ", " + std::to_string(H) + ", " + std::to_string(P) + "] and " +
                                std::to_string(Nq * S) + " frames, got logits " + shape_str(logits.shape()) +
                                " and " + std::to_string(frame.size()) + " frames");
  }
  for (int64_t f : frame) {
    if (f < -1 || f >= F) {
      throw std::invalid_argument("deformable_sampling_attention: frame " + std::to_string(f) + " is not in [-1, " +
                                  std::to_string(F) + ")");
    }
  }

  // 1. One tall map for a single bilinear read: the H*F frame maps stacked along y, a row of zeros above
  //    each and one below the last. Map m = h*F + f owns rows m*(H'+1) + 1 .. m*(H'+1) + H'.
  //    [H, F, 1 + H', W', d] -> [H*F*(H'+1), W', d] ++ one zero row -> [H*F*(H'+1) + 1, W', d]
  Tensor gap = ops::zeros({H, F, 1, Wg, d}, values.dtype(), values.device());
  Tensor tall = concat({reshape(concat({gap, values}, 2), {H * F * (Hg + 1), Wg, d}),
                        ops::zeros({1, Wg, d}, values.dtype(), values.device())},
                       0);

  // 2. Each point's y moved into its map's rows. A point with -1 <= y < H' reads only its own frame and the
  //    zero rows around it, exactly as on the frame alone; any other y (and an unused slot) reads nothing
  //    in its frame, so it is sent to y = -2, above the tall map, where all four neighbours count as 0.
  const int64_t points_total = Nq * S * H * P;
  const std::vector<double> ys =
      ops::to_dtype(ops::contiguous(ops::to_device(select(positions, 4, 0).detach(), Device::cpu())), DType::Float64)
          .to_vector<double>();
  std::vector<double> row_offset(points_total), inside(points_total);
  for (int64_t i = 0; i < points_total; ++i) {
    const int64_t slot = i / (H * P), head = i / P % H;  // i = ((query * S + s) * H + head) * P + n
    const int64_t f = frame[slot];
    row_offset[i] = f < 0 ? 0.0 : static_cast<double>((head * F + f) * (Hg + 1) + 1);
    inside[i] = f >= 0 && ys[i] >= -1.0 && ys[i] < static_cast<double>(Hg) ? 1.0 : 0.0;
  }
  const Shape grid_shape{Nq, S, H, P};
  Tensor y = select(positions, 4, 0) + constant_like(positions, row_offset, grid_shape);
  y = where(bool_mask(inside, grid_shape, positions.device()), y, ops::full(grid_shape, -2.0, y.dtype(), y.device()));
  Tensor points = reshape(stack({y, select(positions, 4, 1)}, 4), {points_total, 2});
  Tensor samples = reshape(bilinear_sample_points(tall, points), {Nq, S, H, P, d});

  // 3. The weights: per query and head, one softmax over its S x P samples; slots without a frame get 0.
  std::vector<double> unused(points_total);
  for (int64_t i = 0; i < points_total; ++i) unused[i] = frame[i / (H * P)] < 0 ? 1.0 : 0.0;
  Tensor masked = masked_fill(logits, bool_mask(unused, grid_shape, logits.device()), -INFINITY);
  Tensor alpha = softmax(reshape(permute(masked, {0, 2, 1, 3}), {Nq, H, S * P}), -1);  // [Nq, H, S*P]

  // 4. The weighted sum: [Nq, H, 1, S*P] x [Nq, H, S*P, d] -> [Nq, H, d].
  Tensor by_head = reshape(permute(samples, {0, 2, 1, 3, 4}), {Nq, H, S * P, d});
  return squeeze(matmul(unsqueeze(alpha, 2), by_head), 2);
}

// ---- the layer ----

DeformableAttention::DeformableAttention(int64_t d, int64_t h, double drop, int64_t sub, int64_t pts, int64_t srch)
    : dim(d), heads(h), head_dim(h > 0 ? d / h : 0), subclip(sub), points(pts), search(srch) {
  if (h <= 0 || d % h != 0) {
    throw std::invalid_argument("deformable attention: dim " + std::to_string(d) + " is not divisible by " +
                                std::to_string(h) + " heads");
  }
  if (sub < 1) throw std::invalid_argument("deformable attention: option subclip = " + std::to_string(sub) + " must be >= 1");
  if (pts < 1) throw std::invalid_argument("deformable attention: option points = " + std::to_string(pts) + " must be >= 1");
  if (srch < 0) throw std::invalid_argument("deformable attention: option search = " + std::to_string(srch) + " must be >= 0");
  motion_embed = register_module("motion_embed", std::make_shared<Linear>(3, d));
  sampling_offsets = register_module("sampling_offsets", std::make_shared<Linear>(d, h * pts * 2));
  attention_weights = register_module("attention_weights", std::make_shared<Linear>(d, h * pts));
  value_proj = register_module("value_proj", std::make_shared<Linear>(d, d));
  output_proj = register_module("output_proj", std::make_shared<Linear>(d, d));
  proj_drop = register_module("proj_drop", std::make_shared<Dropout>(drop));
  reset_special_parameters();
}

void DeformableAttention::reset_special_parameters() {
  init::zeros_(sampling_offsets->weight), init::zeros_(sampling_offsets->bias);
  init::zeros_(attention_weights->weight), init::zeros_(attention_weights->bias);
}

Tensor DeformableAttention::forward(const Tensor& x, const TokenLayout& layout) const {
  if (x.dim() != 2 || x.size(1) != dim || x.size(0) != layout.total_tokens()) {
    throw std::invalid_argument("deformable attention: expected x [" + std::to_string(layout.total_tokens()) + ", " +
                                std::to_string(dim) + "] for this layout, got " + shape_str(x.shape()));
  }
  const int64_t N = x.size(0), B = layout.batch_size();
  const Grid& g = layout.grid();
  const int64_t S = std::min(subclip, g.t);  // slots: the frames of a sub-clip
  const RunExpansion grid_of = run_expansion(layout, "deformable attention");

  // 1. The value map of every frame, per head: value_proj(x) run-expanded to the dense grid,
  //    [B*T'H'W', D] -> [B*T', H', W', H, d] -> [H, B*T', H', W', d] (frame b*T' + t).
  Tensor value = densify(value_proj->forward(x), 0, grid_of);
  Tensor maps = contiguous(permute(reshape(value, {B * g.t, g.h, g.w, heads, head_dim}), {3, 0, 1, 2, 4}));

  // 2. The motion cue, on the host: block matching on the (run-expanded, detached) input tokens.
  const MotionField motion = block_matching(densify(x.detach(), 0, grid_of), B, g, search);

  // 3. For each (query, slot): the frame it reads, its cue [MD_y, MD_x, t' - t] and its reference point
  //    (h, w) + MD. Query i at frame t has the sub-clip starting at t - t % S; slot s reads frame start + s.
  const int32_t* tt = layout.t().data<int32_t>();
  const int32_t* hh = layout.h().data<int32_t>();
  const int32_t* ww = layout.w().data<int32_t>();
  std::vector<int64_t> frame(static_cast<size_t>(N * S), -1);
  std::vector<double> cue(static_cast<size_t>(N * S * 3), 0.0), reference(static_cast<size_t>(N * S * 2), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = layout.clip_begin(b); i < layout.clip_begin(b) + layout.clip_tokens(b); ++i) {
      const int64_t start = tt[i] - tt[i] % S;
      for (int64_t s = 0; s < S; ++s) {
        const int64_t slot = i * S + s, t_to = start + s;
        reference[2 * slot] = hh[i], reference[2 * slot + 1] = ww[i];
        if (t_to >= g.t) continue;  // past the end of a short last sub-clip: masked out
        const std::array<int64_t, 2> md = motion_displacement(motion, b, tt[i], hh[i], ww[i], t_to);
        frame[slot] = b * g.t + t_to;
        cue[3 * slot] = static_cast<double>(md[0]), cue[3 * slot + 1] = static_cast<double>(md[1]);
        cue[3 * slot + 2] = static_cast<double>(t_to - tt[i]);
        reference[2 * slot] += static_cast<double>(md[0]), reference[2 * slot + 1] += static_cast<double>(md[1]);
      }
    }
  }

  // 4. Offsets and logits from the query plus the embedded motion cue: z [N, S, D].
  Tensor z = unsqueeze(x, 1) + reshape(motion_embed->forward(constant_like(x, cue, {N * S, 3})), {N, S, dim});
  Tensor offsets = reshape(sampling_offsets->forward(z), {N, S, heads, points, 2});
  Tensor logits = reshape(attention_weights->forward(z), {N, S, heads, points});
  Tensor positions = offsets + constant_like(x, reference, {N, S, 1, 1, 2});  // p = (h, w) + MD + offset

  // 5. Sample, weigh, merge the heads, project.
  Tensor o = deformable_sampling_attention(maps, positions, logits, frame);  // [N, H, d]
  return proj_drop->forward(output_proj->forward(reshape(o, {N, dim})));
}

std::shared_ptr<AttentionLayer> make_deformable_attention(const AttentionConfig& c) {
  auto whole = [&](const char* name, double fallback) {
    const double v = c.option(name, fallback);
    if (v != std::floor(v)) {
      throw std::invalid_argument(std::string("deformable attention: option ") + name + " = " + std::to_string(v) +
                                  " must be a whole number");
    }
    return static_cast<int64_t>(v);
  };
  const int64_t subclip = whole("subclip", 4), points = whole("points", 4), search = whole("search", 1);
  return std::make_shared<DeformableAttention>(c.dim, c.heads, c.proj_drop, subclip, points, search);
}

}  // namespace glance::nn
