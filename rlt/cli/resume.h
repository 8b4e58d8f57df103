// `glance train --load FILE`: the run continues the checkpoint's model. Its config comes from the file; a model
// option given on the command line must agree with it, and one that contradicts it (--heads 8 for a model of 4
// heads) is an error naming both values, never a model silently built otherwise. The tokenizer settings default
// to the checkpoint's too (given ones apply: they change which tokens the model sees, not its shape), and so does
// the softmax kernel, mapped to one that runs on the device.
#pragma once
#include <string>

#include "cli/args.h"
#include "rlt/run_config.h"
#include "tensor/device.h"

namespace glance::cli {

rlt::ModelConfig model_to_resume(const Args& args, const rlt::RunConfig& saved, const std::string& checkpoint_path,
                                 Device device);

}  // namespace glance::cli
