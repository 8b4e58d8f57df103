#include "nn/attention/orthoformer.h"

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

namespace glance::nn {

namespace {

// The greedy loop on host rows [L, d] (row-major doubles); see orthogonal_prototypes.
std::vector<int64_t> select_prototypes(const double* rows, int64_t L, int64_t d, int64_t count, int64_t first) {
  count = std::min(count, L);
  if (count <= 0) return {};
  // Unit rows (F.normalize: a zero row stays zero).
  std::vector<double> unit(rows, rows + L * d);
  for (int64_t i = 0; i < L; ++i) {
    double norm = 0;
    for (int64_t c = 0; c < d; ++c) norm += unit[i * d + c] * unit[i * d + c];
    norm = std::max(std::sqrt(norm), 1e-12);
    for (int64_t c = 0; c < d; ++c) unit[i * d + c] /= norm;
  }
  std::vector<bool> selected(static_cast<size_t>(L), false);
  // worst[i]: the largest |cos| between row i and the rows selected so far.
  std::vector<double> worst(static_cast<size_t>(L), -std::numeric_limits<double>::infinity());
  int64_t last = first;
  selected[last] = true;
  for (int64_t m = 1; m < count; ++m) {
    int64_t pick = -1;
    for (int64_t i = 0; i < L; ++i) {
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += unit[i * d + c] * unit[last * d + c];
      worst[i] = std::max(worst[i], std::abs(dot));
      // The most orthogonal unselected row; strict < keeps the lowest index on ties (torch's argmin).
      if (!selected[i] && (pick < 0 || worst[i] < worst[pick])) pick = i;
    }
    last = pick;
    selected[last] = true;
  }
  std::vector<int64_t> chosen;
  for (int64_t i = 0; i < L; ++i)
    if (selected[i]) chosen.push_back(i);
  return chosen;
}

}  // namespace

std::vector<int64_t> orthogonal_prototypes(const Tensor& rows, int64_t count, int64_t first) {
  if (rows.dim() != 2)
    throw std::invalid_argument("orthogonal_prototypes: rows must be [L, d], got " + shape_str(rows.shape()));
  const int64_t L = rows.size(0);
  if (L > 0 && (first < 0 || first >= L)) {
    throw std::invalid_argument("orthogonal_prototypes: first index " + std::to_string(first) + " is not a row of " +
                                shape_str(rows.shape()));
  }
  const std::vector<double> host = ops::to_dtype(ops::contiguous(rows.detach()), DType::Float64).to_vector<double>();
  return select_prototypes(host.data(), L, rows.size(1), count, first);
}

int64_t first_prototype(int64_t seed, int64_t head, int64_t tokens) {
  if (seed == 0 || tokens <= 1) return 0;
  std::mt19937_64 rng(static_cast<uint64_t>(seed) * 1000003u + static_cast<uint64_t>(head));
  return static_cast<int64_t>(rng() % static_cast<uint64_t>(tokens));
}

std::vector<Tensor> orthoformer_landmarks(const Tensor& q_scaled, const TokenLayout& layout, int64_t count,
                                          int64_t seed) {
  const int64_t H = q_scaled.size(0), N = q_scaled.size(1), d = q_scaled.size(2);
  const Tensor constant = contiguous(q_scaled.detach());  // landmarks carry no gradient (torch.no_grad in the code)
  const std::vector<double> host = ops::to_dtype(constant, DType::Float64).to_vector<double>();
  std::vector<Tensor> landmarks;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
    if (L == 0) {
      landmarks.emplace_back();
      continue;
    }
    // Rows of `constant` as [H * N, d]: head h's token i is row h * N + i.
    std::vector<int64_t> rows;
    for (int64_t h = 0; h < H; ++h) {
      const double* clip_rows = host.data() + (h * N + first) * d;
      for (int64_t i : select_prototypes(clip_rows, L, d, count, first_prototype(seed, h, L)))
        rows.push_back(h * N + first + i);
    }
    const int64_t R = static_cast<int64_t>(rows.size()) / H;
    landmarks.push_back(reshape(index_select(reshape(constant, {H * N, d}), 0, ops::from_vector(rows)), {H, R, d}));
  }
  return landmarks;
}

Tensor orthoformer_trajectory_tokens(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const std::vector<Tensor>& landmarks, const TokenLayout& layout,
                                     const FrameKeys& frames) {
  const int64_t N = layout.total_tokens();
  if (q.dim() != 3 || q.size(1) != N || k.shape() != q.shape() || v.shape() != q.shape()) {
    throw std::invalid_argument("orthoformer_trajectory_tokens: expected q, k, v [H, " + std::to_string(N) +
                                ", d] for this layout, got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) +
                                ", " + shape_str(v.shape()));
  }
  if (static_cast<int64_t>(landmarks.size()) != layout.batch_size()) {
    throw std::invalid_argument("orthoformer_trajectory_tokens: " + std::to_string(landmarks.size()) +
                                " landmark sets for " + std::to_string(layout.batch_size()) + " clips");
  }
  const int64_t H = q.size(0), d = q.size(2), T = frames.frames;
  const double quarter = std::pow(static_cast<double>(d), -0.25);  // d^-1/4 on q and on k
  const Tensor q_scaled = q * quarter;
  const Tensor k_scaled = (frames.already_sorted ? k : index_select(k, 1, frames.order)) * quarter;
  const Tensor values = frames.already_sorted ? v : index_select(v, 1, frames.order);

  std::vector<Tensor> clips;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    const int64_t first = layout.clip_begin(b), L = layout.clip_tokens(b);
    if (L == 0) continue;
    const Tensor& P = landmarks[b];  // [H, R, d]
    if (!P.defined() || P.dim() != 3 || P.size(0) != H || P.size(2) != d) {
      throw std::invalid_argument("orthoformer_trajectory_tokens: clip " + std::to_string(b) + " needs landmarks [" +
                                  std::to_string(H) + ", R, " + std::to_string(d) + "], got " +
                                  (P.defined() ? shape_str(P.shape()) : std::string("none")));
    }
    const int64_t R = P.size(1);
    const Tensor kb = narrow(k_scaled, 1, first, L), vb = narrow(values, 1, first, L);
    // K1: each query's distribution over the landmarks, [H, L, R].
    const Tensor k1 = softmax(matmul(narrow(q_scaled, 1, first, L), transpose(P, 1, 2)), -1);
    // Landmark -> key scores [H, R, L (frame-sorted)]; K2 is their softmax within each frame's block.
    const Tensor landmark_scores = matmul(P, transpose(kb, 1, 2));
    std::vector<Tensor> per_frame;  // T' tensors [H, R, d]: each landmark's average value in frame t'
    for (int64_t s = 0; s < T; ++s) {
      const FrameKeys::Block block = frames.blocks[b][s];
      if (block.count == 0) {  // no keys in this frame: zero (stage 2 masks the frame out)
        per_frame.push_back(zeros({H, R, d}, q.dtype()));
        continue;
      }
      const Tensor k2 = softmax(narrow(landmark_scores, 2, block.begin, block.count), -1);
      per_frame.push_back(matmul(k2, narrow(vb, 1, block.begin, block.count)));
    }
    const Tensor landmark_values = reshape(stack(per_frame, 2), {H, R, T * d});  // [H, R, T' d]
    clips.push_back(reshape(matmul(k1, landmark_values), {H, L, T, d}));         // [H, L, T', d]
  }
  if (clips.empty()) return zeros({H, 0, T, d}, q.dtype());
  return concat(clips, 1);  // [H, N, T', d]
}

OrthoformerAttention::OrthoformerAttention(int64_t d, int64_t h, int64_t r, int64_t s, bool qkv_bias, double drop,
                                           bool original)
    : TrajectoryAttention(d, h, qkv_bias, drop, original), prototypes(r), seed(s) {
  design_name_ = "orthoformer";
  if (r < 1) throw std::invalid_argument("orthoformer: option prototypes must be >= 1, got " + std::to_string(r));
  if (s < 0) throw std::invalid_argument("orthoformer: option seed must be >= 0, got " + std::to_string(s));
}

Tensor OrthoformerAttention::trajectories(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                                          const FrameKeys& frames) const {
  const double quarter = std::pow(static_cast<double>(head_dim), -0.25);
  const std::vector<Tensor> landmarks = orthoformer_landmarks(q.detach() * quarter, layout, prototypes, seed);
  return orthoformer_trajectory_tokens(q, k, v, landmarks, layout, frames);
}

std::shared_ptr<AttentionLayer> make_orthoformer_attention(const AttentionConfig& c) {
  auto whole = [&](const char* name, double fallback) {
    const double value = c.option(name, fallback);
    if (value != std::floor(value)) {
      throw std::invalid_argument(std::string("attention 'orthoformer': option ") + name +
                                  " must be a whole number, got " + std::to_string(value));
    }
    return static_cast<int64_t>(value);
  };
  const int64_t prototypes = whole("prototypes", 16), seed = whole("seed", 0);
  return std::make_shared<OrthoformerAttention>(c.dim, c.heads, prototypes, seed, c.qkv_bias, c.proj_drop,
                                                read_original_code_option(c, "orthoformer"));
}

}  // namespace glance::nn
