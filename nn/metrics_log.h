// A JSON Lines metrics log: one JSON object per line, appended as training goes, e.g.
//   {"epoch":0,"loss":1.3862,"lr":0.0001,"phase":"train","step":1}
// Each line is written and flushed whole, so a run that dies leaves a readable log up to its last step.
// Read it with `python3 -c "import json; [print(json.loads(l)) for l in open('metrics.jsonl')]"`.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include "nn/json.h"

namespace glance::nn {

class MetricsLog {
 public:
  // Creates (truncates) the file; throws naming the path if it cannot be opened or is there but not a regular
  // file (a FIFO, a device, a folder: tensor/regular_file.h).
  explicit MetricsLog(const std::string& path);
  // A resumed run's log: keeps the lines of the run so far up to and including `step` (those after it were
  // written by steps the checkpoint does not hold, and are trained again; a line cut short by a kill goes too),
  // then appends. A missing file is created.
  MetricsLog(const std::string& path, int64_t continue_after_step);
  void write(const Json& record);  // record must be a JSON object
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace glance::nn
