// AttentionLayer: what an attention design must provide to sit inside a TransformerBlock.
//
// Every design of the video-transformer literature that glance hosts (nn/attention/*.cpp, listed by
// `glance variants`) is one subclass of this, in one file. The block calls it like this:
//
//   x [N_total, D], layout (the clips packed, with each token's (t, h, w) and run length)
//   x' = layer.skip(x, layout) + drop_path(layer.update(x, layout, norm1))
//   layout' = layer.output_layout(layout)            (the same layout except in a downsampling stage)
//
// The default `update` is the usual pre-LN step, forward(norm1(x)); designs with their own residual
// structure (TimeSformer's divided attention adds a temporal residual first) override `update`.
// Designs that shrink the token set (MViT's pooling attention with a query stride) override `skip`
// and `output_layout` too.
#pragma once
#include <map>
#include <string>

#include "nn/layer_norm.h"
#include "nn/module.h"
#include "nn/token_layout.h"

namespace glance::nn {

// Everything a design's factory gets. `options` holds the design's own knobs by name (each design's
// file documents its knobs and their defaults); unknown names are an error, so a typo never goes unseen.
struct AttentionConfig {
  int64_t dim = 192, heads = 3;
  bool qkv_bias = true;
  double proj_drop = 0.0;
  std::string kernel = "device";  // the softmax-attention kernel for inner steps (nn/attention/kernel.h)
  Grid grid;                         // the token grid of one clip, (T', H', W')
  std::map<std::string, double> options;

  // The option `name`, or `fallback` when it is not given. Records the name as known (see check_options).
  double option(const std::string& name, double fallback) const;
  // Throws naming any option in `options` that the design never asked for (make_attention calls it).
  void check_options(const std::string& design) const;
  // The options the design asked for so far, with their defaults (for `glance variants`).
  const std::map<std::string, double>& asked_options() const { return asked_; }

 private:
  mutable std::map<std::string, double> asked_;
};

class AttentionLayer : public Module {
 public:
  // x: [N_total, D], already normalised by the block; returns [N_total, D] (or [N_out, D] in a stage
  // that downsamples, with N_out = output_layout(layout).total_tokens()).
  virtual Tensor forward(const Tensor& x, const TokenLayout& layout) const = 0;

  // The block's attention update from the block input x (not normalised). Default: forward(norm1(x)).
  virtual Tensor update(const Tensor& x, const TokenLayout& layout, const LayerNorm& norm1) const {
    return forward(norm1.forward(x), layout);
  }
  // The residual path of the block: x itself, unless the layer changes the token set.
  virtual Tensor skip(const Tensor& x, const TokenLayout& layout) const { return x; }
  virtual TokenLayout output_layout(const TokenLayout& layout) const { return layout; }

  // Called by a model after its generic weight init, for designs whose paper initialises some weights
  // specially (e.g. TimeSformer's zero temporal_fc).
  virtual void reset_special_parameters() {}
  // Switches the softmax-attention kernel of the inner steps, where the design has any.
  virtual void set_kernel(const std::string& name) {}
};

}  // namespace glance::nn
