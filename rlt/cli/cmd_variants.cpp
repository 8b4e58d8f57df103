// glance variants: the attention designs glance hosts, with their files and knobs.
#include <exception>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "nn/attention/registry.h"
#include "rlt/model.h"

namespace glance::cli {

int run_variants(int argc, char** argv) {
  Args a("glance variants", "list the attention designs (use one with: glance train --attention NAME)");
  a.option("dim", "64", "width used to instantiate each design when listing its parameter count", Range::integers(1, rlt::ModelLimits::dim));
  a.option("heads", "4", "heads used to instantiate each design", Range::integers(1, rlt::ModelLimits::dim));
  if (!a.parse(argc, argv)) return 0;  // --help was printed
  for (const nn::AttentionVariant& v : nn::attention_variants()) {
    // Instantiate the design on the tiny preset's grid (8 x 4 x 4 tokens) to read its knobs.
    nn::AttentionConfig config;
    config.dim = a.integer("dim");
    config.heads = a.integer("heads");
    config.grid = nn::Grid{8, 4, 4};
    std::cout << v.name << "\n  " << v.summary << "\n  from: " << v.source << "\n  file: " << v.file;
    try {
      auto layer = v.make(config);
      std::cout << "\n  attention parameters (dim " << config.dim << "): " << layer->parameter_count();
    } catch (const std::exception& e) {  // e.g. an odd head count for a design that splits heads in two
      std::cout << "\n  (not available with --dim " << config.dim << " --heads " << config.heads << ": " << e.what()
                << ")";
    }
    if (v.changes_model) std::cout << "\n  changes the model around the blocks (see the file)";
    if (!config.asked_options().empty()) {
      std::cout << "\n  options (--attention-options):";
      for (const auto& [name, fallback] : config.asked_options()) std::cout << " " << name << "=" << fallback;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace glance::cli
