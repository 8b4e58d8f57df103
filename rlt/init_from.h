// Fine-tuning from weights trained elsewhere (`glance train --init-from FILE`): a glance checkpoint, e.g. one that
// `glance convert` made from a VideoMAE or timm model (rlt/convert.h). Every tensor of the model comes from the
// file, except the classifier when the file's number of classes differs from the data's (or the file has none,
// an encoder converted without its head): the head, and fc_norm when the file has none, keep their fresh
// initialisation. The optimizer's state and the step are not taken: fine-tuning is a new run.
#pragma once
#include <string>
#include <vector>

#include "nn/optim/optimizer.h"
#include "rlt/model.h"

namespace glance::rlt {

struct InitFromResult {
  bool new_head = false;         // the head was initialised afresh (classes differ, or the file has none)
  std::vector<std::string> kept;  // the model's tensors left as initialised (the new head's, fc_norm's)
};

// Loads `path`'s model tensors into `model` (same architecture: names, shapes and dtypes checked, every value
// finite). Throws naming the file and the tensor on any mismatch other than the head's size.
InitFromResult init_from(const std::string& path, RLTransformer& model);

// The optimizer groups with the head's parameters moved into groups of their own whose learning rate is
// `head_lr_scale` times the others' (a new head on a pre-trained body usually learns faster).
std::vector<nn::ParamGroup> with_head_lr_scale(std::vector<nn::ParamGroup> groups, const RLTransformer& model,
                                               double head_lr_scale);

}  // namespace glance::rlt
