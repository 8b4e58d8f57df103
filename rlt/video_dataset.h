// What the trainer needs from a source of labelled clips, whatever it is (the built-in generator or a
// folder of frames): a size, labels, class names, and clips as normalised float tensors [T, 3, S, S].
//
// Training views are drawn from a generator (random crop, flip, start frame); evaluation views are fixed
// (centre crop, evenly spaced clips), and a video may have several of them, whose softmax outputs are
// averaged (multi-clip evaluation).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace glance::rlt {

class VideoDataset {
 public:
  virtual ~VideoDataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t label(int64_t i) const = 0;
  virtual std::vector<std::string> class_names() const = 0;
  virtual Tensor train_clip(int64_t i, Generator& gen) const = 0;          // float32 [T, 3, S, S]
  virtual int64_t eval_views() const { return 1; }
  virtual Tensor eval_clip(int64_t i, int64_t view) const = 0;              // float32 [T, 3, S, S]
  virtual std::string describe() const = 0;                                 // one line for logs
  // Must be safe to call from the data loader's thread while the training thread runs.
};

}  // namespace glance::rlt
