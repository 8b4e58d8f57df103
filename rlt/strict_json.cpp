#include "rlt/strict_json.h"

#include <algorithm>
#include <stdexcept>

namespace glance::rlt {

void require_known_keys(const nn::Json& object, const std::vector<std::string>& known, const std::string& what) {
  if (!object.is_object()) throw std::invalid_argument(what + ": expected an object, got " + object.dump());
  for (const auto& [key, value] : object.as_object()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw std::invalid_argument(what + ": unknown field '" + key + "'");
    }
  }
}

}  // namespace glance::rlt
