// Reading glance's own JSON texts (a checkpoint's "glance.config") strictly: a misspelt or foreign field is an
// error that names it, not a value silently left at its default.
#pragma once
#include <string>
#include <vector>

#include "nn/json.h"

namespace glance::rlt {

// Throws std::invalid_argument("<what>: unknown field '<key>'") for a key of `object` not in `known`, and
// "<what>: expected an object" when `object` is not one.
void require_known_keys(const nn::Json& object, const std::vector<std::string>& known, const std::string& what);

}  // namespace glance::rlt
