#include "nn/embedding.h"

#include "nn/init.h"

namespace glance::nn {

Embedding::Embedding(int64_t n, int64_t d) : count(n), dim(d) {
  weight = register_parameter("weight", ops::empty({n, d}));
  init::normal_(weight, 0.0, 1.0);
}

Tensor Embedding::forward(const Tensor& indices) const {
  // index_select on the flattened indices; its backward scatter-adds into the used rows only.
  Tensor flat = ops::reshape(indices, {indices.numel()});
  Shape shape = indices.shape();
  shape.push_back(dim);
  return reshape(index_select(weight, 0, flat), shape);
}

}  // namespace glance::nn
