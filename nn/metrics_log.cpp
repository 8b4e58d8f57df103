#include "nn/metrics_log.h"

#include <filesystem>
#include <stdexcept>

namespace glance::nn {

namespace {
// The log's folder is created first, so `runs/exp1/metrics.jsonl` works on a fresh checkout.
const std::string& with_parent_created(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return path;
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(with_parent_created(path), std::ios::trunc) {
  if (!out_) throw std::runtime_error("MetricsLog: cannot open '" + path + "' for writing");
}

void MetricsLog::write(const Json& record) {
  if (!record.is_object()) throw std::invalid_argument("MetricsLog: a record must be a JSON object");
  out_ << record.dump() << '\n' << std::flush;
  if (!out_) throw std::runtime_error("MetricsLog: writing to '" + path_ + "' failed");
}

}  // namespace glance::nn
