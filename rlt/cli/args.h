// A small command-line parser for the glance subcommands: each subcommand declares its options (name,
// value or flag, default, help), so `--help` is generated from the same table that parsing uses and an
// unknown option or a missing value is an error that names it.
//
//   Args args("glance tokenize", "Tokenize a folder of frames and report what RLT keeps.");
//   args.positional("FRAMES_DIR", "folder of frames");
//   args.option("tau", "0.1", "keep a tubelet iff its score is > tau");
//   args.flag("json", "print one JSON object");
//   if (!args.parse(argc, argv)) return 0;   // --help was printed
//   double tau = args.number("tau");
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace glance::cli {

class Args {
 public:
  Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}
  void option(const std::string& name, const std::string& default_value, const std::string& help);
  void flag(const std::string& name, const std::string& help);  // --name sets it, --no-name clears it
  void flag(const std::string& name, bool default_value, const std::string& help);
  void positional(const std::string& name, const std::string& help);

  // Parses argv[first..]. Returns false when --help was asked for (the help is printed). Throws
  // std::invalid_argument for an unknown option, a missing value or a missing positional argument.
  bool parse(int argc, char** argv, int first = 2);

  std::string help() const;
  std::string str(const std::string& name) const;
  double number(const std::string& name) const;   // throws naming the option if not a number
  int64_t integer(const std::string& name) const; // throws naming the option if not an integer
  bool on(const std::string& name) const;
  bool given(const std::string& name) const;      // set on the command line (not just defaulted)
  const std::string& arg(const std::string& positional_name) const;

 private:
  struct Spec {
    std::string name, default_value, help;
    bool is_flag = false;
  };
  const Spec* find(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
};

}  // namespace glance::cli
