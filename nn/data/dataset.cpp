#include "nn/data/dataset.h"

#include <stdexcept>

#include "nn/data/dataloader.h"
#include "tensor/ops.h"

namespace glance::nn {

std::vector<int64_t> epoch_order(int64_t size, bool shuffle, uint64_t seed, int64_t epoch) {
  if (!shuffle) {
    std::vector<int64_t> order(size);
    for (int64_t i = 0; i < size; ++i) order[i] = i;
    return order;
  }
  // A stream of its own per epoch: key = seed, counter starting at epoch * 2^40, so (seed, epoch) pairs
  // never share random numbers, and the order never depends on draws made elsewhere.
  Generator gen(seed);
  gen.set_state({seed, static_cast<uint64_t>(epoch) << 40});
  return ops::randperm(size, &gen).to_vector<int64_t>();
}

TensorDataset::TensorDataset(Tensor inputs, Tensor labels) : inputs_(std::move(inputs)), labels_(std::move(labels)) {
  if (inputs_.dim() == 0 || labels_.dim() != 1 || labels_.size(0) != inputs_.size(0)) {
    throw std::invalid_argument("TensorDataset: inputs " + shape_str(inputs_.shape()) + " and labels " +
                                shape_str(labels_.shape()) + " must agree on the first axis");
  }
  labels_ = ops::to_dtype(labels_, DType::Int64);
}

Example TensorDataset::get(int64_t index) const {
  if (index < 0 || index >= size()) {
    throw std::out_of_range("TensorDataset: index " + std::to_string(index) + " outside [0, " + std::to_string(size()) + ")");
  }
  return {ops::select(inputs_, 0, index), static_cast<int64_t>(ops::select(labels_, 0, index).item())};
}

LabeledBatch stack_examples(const Dataset& dataset, const std::vector<int64_t>& indices) {
  std::vector<Tensor> inputs;
  std::vector<int64_t> labels;
  for (int64_t i : indices) {
    Example e = dataset.get(i);
    inputs.push_back(e.input);
    labels.push_back(e.label);
  }
  if (inputs.empty()) throw std::invalid_argument("stack_examples: empty batch");
  return {ops::stack(inputs, 0), ops::from_vector(labels)};
}

}  // namespace glance::nn
