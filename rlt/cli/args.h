// A small command-line parser for the glance subcommands: each subcommand declares its options (name,
// value or flag, default, help), so `--help` is generated from the same table that parsing uses and an
// unknown option or a missing value is an error that names it.
//
//   Args args("glance tokenize", "Tokenize a folder of frames and report what RLT keeps.");
//   args.positional("FRAMES_DIR", "folder of frames");
//   args.option("tau", "0.1", "keep a tubelet iff its score is > tau", Range::numbers(0, 100));
//   args.flag("json", "print one JSON object");
//   if (!args.parse(argc, argv)) return 0;   // --help was printed
//   double tau = args.number("tau");         // finite and in [0, 100], or an error naming --tau and the value
//
// A numeric option is declared with its Range, and only such an option can be read as a number: every number
// a user gives is checked (finite, integral where it must be, in range) where it is read, with the option and
// the value named.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace glance::cli {

// The values a numeric option accepts: integers or finite numbers from lo to hi, each end included unless open.
struct Range {
  double lo = 0, hi = 0;
  bool lo_open = false;
  bool integers_only = false;
  static Range integers(int64_t lo, int64_t hi) { return {double(lo), double(hi), false, true}; }
  static Range numbers(double lo, double hi) { return {lo, hi, false, false}; }
  static Range above(double lo, double hi) { return {lo, hi, true, false}; }  // (lo, hi]
  std::string str() const;  // "[1, 256]", "(0, 10]"
  bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
};

class Args {
 public:
  Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}
  void option(const std::string& name, const std::string& default_value, const std::string& help);
  void option(const std::string& name, const std::string& default_value, const std::string& help, Range range);
  void flag(const std::string& name, const std::string& help);  // --name sets it, --no-name clears it
  void flag(const std::string& name, bool default_value, const std::string& help);
  void positional(const std::string& name, const std::string& help);

  // Parses argv[first..]. Returns false when --help was asked for (the help is printed). Throws
  // std::invalid_argument for an unknown option, a missing value, a missing positional argument, or a numeric
  // option's value (given or default) that number() / integer() would refuse.
  bool parse(int argc, char** argv, int first = 2);

  std::string help() const;
  std::string str(const std::string& name) const;
  // A numeric option's value; throws std::invalid_argument naming the option and the value if it is not a
  // number (an integer), not finite or outside the option's Range; std::logic_error for an option declared
  // without one.
  double number(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool on(const std::string& name) const;
  bool given(const std::string& name) const;      // set on the command line (not just defaulted)
  const std::string& arg(const std::string& positional_name) const;

 private:
  struct Spec {
    std::string name, default_value, help;
    bool is_flag = false;
    std::optional<Range> range;  // set for a numeric option
  };
  const Range& range_of(const std::string& name) const;
  const Spec* find(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
};

}  // namespace glance::cli
