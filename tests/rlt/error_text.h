// Helpers for tests that check error messages (shared by the tests in tests/rlt/).
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>

namespace glance::rlt::test_support {

// The message of the exception `f` throws ("" if it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// EXPECT_TRUE(Contains(error_of(...), "the file")): a failure prints both strings.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& piece) {
  if (text.find(piece) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << piece << "'";
}

}  // namespace glance::rlt::test_support
