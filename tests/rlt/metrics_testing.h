// Reading a metrics log (nn/metrics_log.h) in tests that compare runs.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nn/json.h"

namespace glance::rlt::test_support {

// The log's lines without their timing (clips_per_s): what a resumed run must reproduce bit for bit.
inline std::vector<std::string> metrics_without_timing(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    const nn::Json record = nn::Json::parse(line);  // a named value: the loop below must not outlive it
    nn::Json kept = nn::Json::object();
    for (const auto& [key, value] : record.as_object()) {
      if (key != "clips_per_s") kept.set(key, value);
    }
    lines.push_back(kept.dump());
  }
  return lines;
}

}  // namespace glance::rlt::test_support
