// Fuzzing the JSON parser (nn/json.h) and the strict reader of a checkpoint's "glance.config" built on it
// (rlt/run_config.h). Promises checked beyond "no crash": a parsed value dumps to text that parses again to
// the same value and the same text (dump is deterministic), and a config that parses turns back into JSON that
// parses to the same config.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_input.h"
#include "nn/json.h"
#include "rlt/run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace glance;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nn::Json value = nn::Json::parse(text);
    const std::string dumped = value.dump();
    const nn::Json again = nn::Json::parse(dumped);
    fuzz::fuzz_check(again.dump() == dumped, "Json: dump() of a parsed value does not parse back to itself");
  } catch (const std::exception&) {
    // Refused with a message: what bad JSON must get.
  }
  try {
    const rlt::RunConfig config = rlt::parse_run_config(text);
    const std::string json = rlt::run_config_json(config.model, config.tokenizer, config.class_names);
    const rlt::RunConfig again = rlt::parse_run_config(json);
    fuzz::fuzz_check(rlt::run_config_json(again.model, again.tokenizer, again.class_names) == json,
                     "RunConfig: a parsed config written back does not read back the same");
  } catch (const std::exception&) {
  }
  return 0;
}
