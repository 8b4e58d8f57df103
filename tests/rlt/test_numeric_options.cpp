// Every number given to glance on its command line is checked where it is read: not a number, not finite, not
// an integer where one is needed, or out of the option's range is an error naming the option and the value,
// before any work starts; and every numeric option states its range in --help.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "rlt/cli_testing.h"

namespace {

using glance::rlt::test_support::Output;
using glance::rlt::test_support::run_glance;

::testing::AssertionResult refused_naming(const std::string& args, const std::string& piece) {
  const Output out = run_glance(args);
  if (out.status != 1) return ::testing::AssertionFailure() << args << ": exit status " << out.status << ":\n" << out.text;
  if (out.text.find(piece) == std::string::npos) return ::testing::AssertionFailure() << args << ": no '" << piece << "' in:\n" << out.text;
  if (out.text.find("data:") != std::string::npos) return ::testing::AssertionFailure() << args << ": work began:\n" << out.text;
  return ::testing::AssertionSuccess();
}

TEST(NumericOptions, BadNumbersAreNamedBeforeAnyWork) {
  EXPECT_TRUE(refused_naming("train --lr nan", "--lr expects a finite number, got 'nan'"));
  EXPECT_TRUE(refused_naming("train --lr inf", "--lr expects a finite number, got 'inf'"));
  EXPECT_TRUE(refused_naming("train --lr 0", "--lr 0 is out of range: it must be in (0, 10]"));
  EXPECT_TRUE(refused_naming("train --lr -1e-3", "--lr -1e-3 is out of range"));
  EXPECT_TRUE(refused_naming("train --batch-size 0", "--batch-size 0 is out of range: it must be in [1, "));
  EXPECT_TRUE(refused_naming("train --batch-size 2.5", "--batch-size expects an integer, got '2.5'"));
  EXPECT_TRUE(refused_naming("train --steps -5", "--steps -5 is out of range"));
  EXPECT_TRUE(refused_naming("train --label-smoothing 1.5", "--label-smoothing 1.5 is out of range"));
  EXPECT_TRUE(refused_naming("train --weight-decay -0.1", "--weight-decay -0.1 is out of range"));
  EXPECT_TRUE(refused_naming("train --seed -1", "--seed -1 is out of range"));
  EXPECT_TRUE(refused_naming("train --tau inf", "--tau expects a finite number, got 'inf'"));
  EXPECT_TRUE(refused_naming("train --depth 1000000", "--depth 1000000 is out of range: it must be in [1, 256]"));
  EXPECT_TRUE(refused_naming("train --size 16384", "--size 16384 is out of range"));
  EXPECT_TRUE(refused_naming("demo --epochs 0", "--epochs 0 is out of range"));
  EXPECT_TRUE(refused_naming("eval --load x.safetensors --batch-size 0", "--batch-size 0 is out of range"));
  EXPECT_TRUE(refused_naming("generate --count 99999999999", "--count 99999999999 is out of range"));
  EXPECT_TRUE(refused_naming("visualize --scale 0", "--scale 0 is out of range"));
}

// Every option that --help shows with a numeric default (or that is a size, count or rate without one) states
// its range there: an option declared without one could not be read as a number at all.
TEST(NumericOptions, HelpStatesEveryNumericOptionsRange) {
  for (const char* command : {"demo", "train", "eval", "predict", "tokenize", "visualize", "generate", "variants",
                              "check-data"}) {
    const Output out = run_glance(std::string(command) + " --help");
    ASSERT_EQ(out.status, 0) << out.text;
    std::istringstream lines(out.text);
    std::string line;
    int numeric = 0;
    while (std::getline(lines, line)) {
      const std::string marker = "VALUE   (default: ";
      const size_t at = line.find(marker);
      if (at == std::string::npos) continue;
      const size_t begin = at + marker.size();
      const std::string value = line.substr(begin, line.find_first_of(";)", begin) - begin);
      const bool looks_numeric = !value.empty() && value.find_first_not_of("0123456789.e-+") == std::string::npos;
      if (!looks_numeric) continue;
      ++numeric;
      EXPECT_NE(line.find(" in "), std::string::npos) << command << ": " << line;
    }
    EXPECT_GT(numeric, 0) << command;
  }
}

}  // namespace
