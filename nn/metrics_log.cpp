#include "nn/metrics_log.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "nn/atomic_file.h"
#include "tensor/regular_file.h"

namespace glance::nn {

namespace {
// The log's folder is created first, so `runs/exp1/metrics.jsonl` works on a fresh checkout. Something that
// is there already must be a regular file: opening a FIFO blocks until a reader comes, a device is no log.
const std::string& with_parent_created(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (std::filesystem::exists(path, ec)) {
    const std::string problem = regular_file_problem(path);
    if (!problem.empty()) throw std::runtime_error("MetricsLog: '" + path + "' " + problem);
  }
  return path;
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(with_parent_created(path), std::ios::trunc) {
  if (!out_) throw std::runtime_error("MetricsLog: cannot open '" + path + "' for writing");
}

namespace {
// The lines of the log at `path` whose "step" is at most `step` (lines without a step, such as a header, stay).
std::string lines_up_to(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a line cut short by a kill
    try {
      const Json record = Json::parse(line);
      if (record.is_object() && record.contains("step") && record["step"].as_int64() > step) continue;
    } catch (const std::exception&) {
      continue;  // not a JSON line
    }
    kept += line + '\n';
  }
  return kept;
}

std::string with_lines_up_to(const std::string& path, int64_t step) {
  with_parent_created(path);
  const std::string kept = lines_up_to(path, step);
  write_file_atomically(path, [&](std::FILE* file) { return std::fwrite(kept.data(), 1, kept.size(), file) == kept.size(); });
  return path;
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t continue_after_step)
    : path_(path), out_(with_lines_up_to(path, continue_after_step), std::ios::app) {
  if (!out_) throw std::runtime_error("MetricsLog: cannot open '" + path + "' for appending");
}

void MetricsLog::write(const Json& record) {
  if (!record.is_object()) throw std::invalid_argument("MetricsLog: a record must be a JSON object");
  out_ << record.dump() << '\n' << std::flush;
  if (!out_) throw std::runtime_error("MetricsLog: writing to '" + path_ + "' failed");
}

}  // namespace glance::nn
