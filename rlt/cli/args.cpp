#include "cli/args.h"

#include <cmath>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace glance::cli {

void Args::option(const std::string& name, const std::string& default_value, const std::string& help) {
  specs_.push_back({name, default_value, help, false, std::nullopt});
  values_[name] = default_value;
}

void Args::option(const std::string& name, const std::string& default_value, const std::string& help, Range range) {
  option(name, default_value, help);
  specs_.back().range = range;
}

std::string Range::str() const {
  auto text = [](double v) {
    if (v >= 9.2e18) return std::string("2^63 - 1");  // INT64_MAX, which a double rounds up to 2^63
    if (v == std::floor(v) && std::fabs(v) < 1e18) return std::to_string(static_cast<int64_t>(v));
    std::ostringstream s;
    s << v;
    return s.str();
  };
  return (lo_open ? "(" : "[") + text(lo) + ", " + text(hi) + "]";
}

void Args::flag(const std::string& name, const std::string& help) { flag(name, false, help); }

void Args::flag(const std::string& name, bool default_value, const std::string& help) {
  specs_.push_back({name, default_value ? "on" : "off", help, true, std::nullopt});
  values_[name] = default_value ? "1" : "0";
}

void Args::positional(const std::string& name, const std::string& help) { positional_specs_.push_back({name, help}); }

const Args::Spec* Args::find(const std::string& name) const {
  for (const Spec& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool Args::parse(int argc, char** argv, int first) {
  size_t next_positional = 0;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << help();
      return false;
    }
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      const size_t eq = name.find('=');
      const bool has_value = eq != std::string::npos;
      if (has_value) value = name.substr(eq + 1), name = name.substr(0, eq);
      const Spec* spec = find(name);
      if (spec == nullptr && name.rfind("no-", 0) == 0 && find(name.substr(3)) && find(name.substr(3))->is_flag) {
        values_[name.substr(3)] = "0";
        given_[name.substr(3)] = true;
        continue;
      }
      if (spec == nullptr) throw std::invalid_argument(command_ + ": unknown option --" + name + " (see --help)");
      if (spec->is_flag) {
        if (has_value) throw std::invalid_argument(command_ + ": --" + name + " takes no value");
        values_[name] = "1";
      } else {
        if (!has_value) {
          if (i + 1 >= argc) throw std::invalid_argument(command_ + ": --" + name + " needs a value");
          value = argv[++i];
        }
        values_[name] = value;
      }
      given_[name] = true;
    } else {
      if (next_positional >= positional_specs_.size()) {
        throw std::invalid_argument(command_ + ": unexpected argument '" + a + "' (see --help)");
      }
      values_["@" + positional_specs_[next_positional++].first] = a;
    }
  }
  if (next_positional < positional_specs_.size()) {
    throw std::invalid_argument(command_ + ": missing " + positional_specs_[next_positional].first + " (see --help)");
  }
  // Every numeric value is checked now, before the command does any work (reading it again checks again).
  for (const Spec& spec : specs_) {
    if (!spec.range || values_[spec.name].empty()) continue;
    if (spec.range->integers_only) integer(spec.name);
    else number(spec.name);
  }
  return true;
}

std::string Args::help() const {
  std::ostringstream s;
  s << "usage: " << command_;
  for (const auto& [name, text] : positional_specs_) s << " " << name;
  s << " [options]\n\n" << summary_ << "\n";
  if (!positional_specs_.empty()) {
    s << "\narguments:\n";
    for (const auto& [name, text] : positional_specs_) s << "  " << name << "\n      " << text << "\n";
  }
  s << "\noptions:\n";
  for (const Spec& spec : specs_) {
    if (spec.is_flag) {
      s << "  --" << spec.name << " / --no-" << spec.name << "   (default: " << spec.default_value << ")\n";
    } else {
      s << "  --" << spec.name << " VALUE   (default: " << (spec.default_value.empty() ? "none" : spec.default_value);
      if (spec.range) s << "; " << (spec.range->integers_only ? "an integer in " : "a number in ") << spec.range->str();
      s << ")\n";
    }
    s << "      " << spec.help << "\n";
  }
  s << "  --help\n      show this help\n";
  return s.str();
}

std::string Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error(command_ + ": no option named " + name);
  return it->second;
}

const Range& Args::range_of(const std::string& name) const {
  const Spec* spec = find(name);
  if (spec == nullptr || !spec->range) throw std::logic_error(command_ + ": --" + name + " is not a numeric option");
  return *spec->range;
}

double Args::number(const std::string& name) const {
  const Range& range = range_of(name);
  const std::string v = str(name);
  double d = 0;
  bool parsed = false;
  try {
    size_t used = 0;
    d = std::stod(v, &used);
    parsed = used == v.size();
  } catch (const std::exception&) {
  }
  if (!parsed) throw std::invalid_argument(command_ + ": --" + name + " expects a number, got '" + v + "'");
  if (!std::isfinite(d)) throw std::invalid_argument(command_ + ": --" + name + " expects a finite number, got '" + v + "'");
  if (!range.contains(d)) {
    throw std::invalid_argument(command_ + ": --" + name + " " + v + " is out of range: it must be in " + range.str());
  }
  return d;
}

int64_t Args::integer(const std::string& name) const {
  const Range& range = range_of(name);
  const std::string v = str(name);
  long long n = 0;
  bool parsed = false;
  try {
    size_t used = 0;
    n = std::stoll(v, &used);
    parsed = used == v.size();
  } catch (const std::exception&) {
  }
  if (!parsed) throw std::invalid_argument(command_ + ": --" + name + " expects an integer, got '" + v + "'");
  if (!range.contains(double(n))) {
    throw std::invalid_argument(command_ + ": --" + name + " " + v + " is out of range: it must be in " + range.str());
  }
  return n;
}

bool Args::on(const std::string& name) const { return str(name) == "1"; }
bool Args::given(const std::string& name) const { return given_.count(name) > 0; }

const std::string& Args::arg(const std::string& positional_name) const {
  auto it = values_.find("@" + positional_name);
  if (it == values_.end()) throw std::logic_error(command_ + ": no positional argument " + positional_name);
  return it->second;
}

}  // namespace glance::cli
