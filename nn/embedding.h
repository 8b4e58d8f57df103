// Embedding: a table of `count` learned vectors; forward looks rows up by integer index.
#pragma once
#include "nn/module.h"

namespace glance::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t count, int64_t dim);  // weight ~ N(0, 1), as in PyTorch
  // indices: int64 or int32 of any shape -> [..., dim]. Throws naming an index outside [0, count).
  Tensor forward(const Tensor& indices) const;

  int64_t count, dim;
  Tensor weight;  // [count, dim]
};

}  // namespace glance::nn
