// The data-parallel options of glance train are checked in one process too, before any work: a misspelt
// --shard must not pass unnoticed until the run is launched on many nodes.
#include <gtest/gtest.h>

#include <string>

#include "rlt/cli_testing.h"

namespace {

using glance::rlt::test_support::Output;
using glance::rlt::test_support::run_glance;

void expect_refused(const std::string& args, const std::string& piece) {
  const Output out = run_glance(args);
  EXPECT_EQ(out.status, 1) << args << "\n" << out.text;
  EXPECT_NE(out.text.find(piece), std::string::npos) << args << "\n" << out.text;
  EXPECT_EQ(out.text.find("data:"), std::string::npos) << args << ": work began\n" << out.text;
}

TEST(DataParallelOptions, BadValuesAreNamedBeforeAnyWork) {
  expect_refused("train --shard tokenz", "--shard must be clips or tokens, got 'tokenz'");
  expect_refused("train --dist-timeout 0", "--dist-timeout 0 is out of range");
  expect_refused("train --bucket-mb 0", "--bucket-mb 0 is out of range");
  expect_refused("train --stop-after -1", "--stop-after -1 is out of range");
}

}  // namespace
