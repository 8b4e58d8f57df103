#include "nn/metrics_log.h"

#include <stdexcept>

namespace glance::nn {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::trunc) {
  if (!out_) throw std::runtime_error("MetricsLog: cannot open '" + path + "' for writing");
}

void MetricsLog::write(const Json& record) {
  if (!record.is_object()) throw std::invalid_argument("MetricsLog: a record must be a JSON object");
  out_ << record.dump() << '\n' << std::flush;
  if (!out_) throw std::runtime_error("MetricsLog: writing to '" + path_ + "' failed");
}

}  // namespace glance::nn
