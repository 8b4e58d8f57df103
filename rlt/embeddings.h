// The three embeddings that turn RLT tokens into vectors, each a separate, switchable piece:
//
//   tubelet embedding   x_i = W vec(tubelet_i) + b            W stored as a Conv3d kernel [D, 3, u, p, p]
//   positional encoding x_i += PE[(t_i * H' + h_i) * W' + w_i] a fixed sinusoid table [T'H'W', D], indexed by
//                                                              where the token's run starts
//   length encoding     x_i += L[length_i - 1]                 a learned table [T', D], one row per run length
//
// The tubelet embedding is a Conv3d with kernel = stride = tubelet: on one tubelet that is a dot product, so
// it is applied as a linear map of the flattened tubelet (c, dt, y, x order, the order of the kernel).
#pragma once
#include "nn/module.h"
#include "nn/token_layout.h"

namespace glance::rlt {

// The Conv3d's parameters, a child named "proj": a checkpoint then says patch_embed.proj.weight, as glance's image
// ViT, timm and VideoMAE do (checkpoints written before it say patch_embed.weight: `glance convert` renames them).
class TubeletProjection : public nn::Module {
 public:
  TubeletProjection(int64_t channels, int64_t tubelet, int64_t patch, int64_t dim);
  Tensor weight;  // [D, C, u, p, p]
  Tensor bias;    // [D]
};

class TubeletEmbedding : public nn::Module {
 public:
  TubeletEmbedding(int64_t channels, int64_t tubelet, int64_t patch, int64_t dim);
  Tensor forward(const Tensor& tubelets) const;  // [N, C*u*p*p] -> [N, D]
  int64_t input_size() const { return weight.size(1) * weight.size(2) * weight.size(3) * weight.size(4); }
  std::shared_ptr<TubeletProjection> proj;
  Tensor weight;  // proj's [D, C, u, p, p] (the same tensor)
  Tensor bias;    // proj's [D]

  // ViViT's central-frame initialisation (scenic's init_embedding): the 2-D patch kernel goes on the
  // tubelet's central frame u/2 (for u = 2 the second frame, as in the code) and the other taps are
  // zero, so at initialisation a tubelet embeds exactly like a ViT patch of its central frame.
  // patch_weight [D, C, p, p] (a 2-D ViT's patch_embed.proj.weight); the bias is kept.
  void init_central_frame(const Tensor& patch_weight);
  // The same with a fresh 2-D kernel, PyTorch's Conv2d default U(+-1/sqrt(C*p*p)) (no 2-D checkpoint here).
  void init_central_frame();
};

// The 1-D sinusoid table of "Attention is all you need" (VideoMAE's get_sinusoid_encoding_table):
//   PE[pos, 2i] = sin(pos / 10000^(2i/D)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/D)).
Tensor sinusoid_table(int64_t positions, int64_t dim, double base = 10000.0);  // float32 [positions, dim]

// The factorised 3-D variant: the first D_t = D/3 (rounded down to even) columns encode t with their own
// sinusoids, the next D_h encode h, the rest encode w; row (t*H' + h)*W' + w. Each coordinate is then a
// linear read-out away, instead of being tangled in one flat index (see docs/05-patch-embedding.md).
Tensor sinusoid_table_3d(const nn::Grid& grid, int64_t dim, double base = 10000.0);  // [T'H'W', dim]

// Positional encoding of each token's (t, h, w) on the layout's grid: rows of the table. [N, D], no gradient.
Tensor positional_encoding(const Tensor& table, const nn::TokenLayout& layout);

// The learned length encoding: a table indexed by run length (1..max_length).
class LengthEncoding : public nn::Module {
 public:
  LengthEncoding(int64_t max_length, int64_t dim);  // init: trunc_normal(std 0.02), as in the paper's code
  Tensor forward(const nn::TokenLayout& layout) const;  // [N, D]; throws on a length outside 1..max_length
  Tensor weight;  // [max_length, D]
};

}  // namespace glance::rlt
