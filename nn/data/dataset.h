// Dataset: indexed examples (an input tensor and an integer label), and the usual collate that stacks
// a batch of them. get() must be safe to call from the loader's background thread.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace glance::nn {

struct Example {
  Tensor input;
  int64_t label = 0;
};

struct LabeledBatch {
  Tensor inputs;  // [B, ...] the examples' inputs stacked
  Tensor labels;  // int64 [B]
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
};

// A dataset held in memory: inputs [N, ...] and labels [N].
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor inputs, Tensor labels);
  int64_t size() const override { return inputs_.size(0); }
  Example get(int64_t index) const override;

 private:
  Tensor inputs_, labels_;
};

LabeledBatch stack_examples(const Dataset& dataset, const std::vector<int64_t>& indices);

}  // namespace glance::nn
