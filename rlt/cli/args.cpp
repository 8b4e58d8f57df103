#include "cli/args.h"

#include <iostream>
#include <sstream>
#include <stdexcept>

namespace glance::cli {

void Args::option(const std::string& name, const std::string& default_value, const std::string& help) {
  specs_.push_back({name, default_value, help, false});
  values_[name] = default_value;
}

void Args::flag(const std::string& name, const std::string& help) { flag(name, false, help); }

void Args::flag(const std::string& name, bool default_value, const std::string& help) {
  specs_.push_back({name, default_value ? "on" : "off", help, true});
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
      s << "  --" << spec.name << " VALUE   (default: " << (spec.default_value.empty() ? "none" : spec.default_value)
        << ")\n";
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

double Args::number(const std::string& name) const {
  const std::string v = str(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size()) return d;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(command_ + ": --" + name + " expects a number, got '" + v + "'");
}

int64_t Args::integer(const std::string& name) const {
  const std::string v = str(name);
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(command_ + ": --" + name + " expects an integer, got '" + v + "'");
}

bool Args::on(const std::string& name) const { return str(name) == "1"; }
bool Args::given(const std::string& name) const { return given_.count(name) > 0; }

const std::string& Args::arg(const std::string& positional_name) const {
  auto it = values_.find("@" + positional_name);
  if (it == values_.end()) throw std::logic_error(command_ + ": no positional argument " + positional_name);
  return it->second;
}

}  // namespace glance::cli
