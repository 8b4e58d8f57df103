// The subcommands of the `glance` program, one function each (argv[1] is the subcommand's name).
#pragma once

namespace glance::cli {

int run_demo(int argc, char** argv);       // cmd_demo.cpp
int run_train(int argc, char** argv);      // cmd_train.cpp
int run_eval(int argc, char** argv);       // cmd_train.cpp
int run_predict(int argc, char** argv);    // cmd_train.cpp
int run_tokenize(int argc, char** argv);   // cmd_tokenize.cpp
int run_visualize(int argc, char** argv);  // cmd_visualize.cpp
int run_generate(int argc, char** argv);   // cmd_tokenize.cpp: write the built-in dataset as PNG frames
int run_variants(int argc, char** argv);   // cmd_variants.cpp: list the attention designs
int run_convert(int argc, char** argv);    // cmd_convert.cpp: checkpoints of other libraries in and out
int run_check_data(int argc, char** argv); // cmd_check_data.cpp: a frame-folder dataset checked before training

}  // namespace glance::cli
