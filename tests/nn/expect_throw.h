// expect_throw_containing: the call must throw an E (any std::exception unless named) whose message contains
// every piece, e.g. the option's name and the bad value. Shared by the nn tests.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace glance::testing {

template <typename E = std::exception>
void expect_throw_containing(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << pieces.front() << "'";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const auto& piece : pieces) EXPECT_NE(message.find(piece), std::string::npos) << "message: " << message;
  }
}

}  // namespace glance::testing
