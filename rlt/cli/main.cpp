// glance: the command-line program. `glance demo` is the main job; `glance <command> --help` explains each.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"demo", glance::cli::run_demo, "train RLT and a dense baseline on the built-in dataset; one JSON line"},
    {"train", glance::cli::run_train, "train the RLT transformer (built-in dataset or --data DIR)"},
    {"eval", glance::cli::run_eval, "evaluate a checkpoint (--load FILE)"},
    {"predict", glance::cli::run_predict, "class probabilities for a folder of frames (--load FILE CLIP_DIR)"},
    {"tokenize", glance::cli::run_tokenize, "run the run-length tokenizer on a folder of frames and count tokens"},
    {"visualize", glance::cli::run_visualize, "draw kept and dropped tubelets with their run lengths as PNGs"},
    {"generate", glance::cli::run_generate, "write clips of the built-in dataset as PNG frames"},
    {"check-data", glance::cli::run_check_data, "check a dataset of frame folders before training on it"},
    {"variants", glance::cli::run_variants, "list the attention designs (glance train --attention NAME)"},
    {"convert", glance::cli::run_convert, "checkpoints of transformers' VideoMAE, VideoMAE's code and timm in and out"},
};

void usage(std::ostream& out) {
  out << "usage: glance <command> [options]   (glance <command> --help for its options)\n\ncommands:\n";
  for (const Command& c : kCommands) out << "  " << c.name << std::string(12 - std::strlen(c.name), ' ') << c.summary << "\n";
  out << "\nexit status: 0 done, 1 an error (named on stderr), 2 an unknown command, 3 train stopped by SIGINT or\n"
         "SIGTERM after saving (a second signal: 128 + its number, at once)\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "glance " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "glance: unknown command '" << name << "'\n\n";
  usage(std::cerr);
  return 2;
}
