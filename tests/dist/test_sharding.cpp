// Sharding a global batch among ranks (dist/sharding.h), against splits worked out by hand.
#include <gtest/gtest.h>

#include "dist/sharding.h"

namespace {

using namespace glance::dist;
using Shards = std::vector<std::vector<int64_t>>;

TEST(Sharding, ByClipsGivesTheFirstRanksTheRemainder) {
  EXPECT_EQ(shard_by_clips(8, 2), (Shards{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(shard_by_clips(7, 3), (Shards{{0, 1, 2}, {3, 4}, {5, 6}}));
  EXPECT_EQ(shard_by_clips(3, 1), (Shards{{0, 1, 2}}));
}

TEST(Sharding, ByTokensPutsEachClipOnTheLightestRank) {
  // Decreasing: 900 (pos 1) -> r0; 500 (pos 3) -> r1; 400 (pos 0) -> r1 (500 < 900); 300 (pos 2) -> r1 (900 vs 900:
  // fewer clips wins, r0); 100 (pos 4) -> r1.
  //   r0: 900 + 300 = 1200, r1: 500 + 400 + 100 = 1000.
  const std::vector<int64_t> tokens{400, 900, 300, 500, 100};
  EXPECT_EQ(shard_by_tokens(tokens, 2), (Shards{{1, 2}, {0, 3, 4}}));
  EXPECT_EQ(tokens_per_rank(tokens, shard_by_tokens(tokens, 2)), (std::vector<int64_t>{1200, 1000}));
  // By clips the same batch is r0: 400 + 900 + 300 = 1600, r1: 600: max / mean = 1600 / 1100.
  EXPECT_DOUBLE_EQ(imbalance(tokens_per_rank(tokens, shard_by_clips(5, 2))), 1600.0 / 1100.0);
  EXPECT_DOUBLE_EQ(imbalance({1200, 1000}), 1200.0 / 1100.0);
}

TEST(Sharding, EveryRankGetsAClipEvenWhenSomeHaveNoTokens) {
  const Shards s = shard_by_tokens({0, 0, 50, 0}, 3);
  for (const auto& shard : s) EXPECT_FALSE(shard.empty());
  EXPECT_EQ(s, (Shards{{2}, {0, 3}, {1}}));
}

TEST(Sharding, RefusesABatchSmallerThanTheRanks) {
  try {
    shard_by_clips(2, 4);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--batch-size"), std::string::npos) << e.what();
  }
  EXPECT_THROW(shard_by_tokens({1, 2}, 3), std::invalid_argument);
  EXPECT_THROW(parse_shard_mode("tokenz"), std::invalid_argument);
  EXPECT_EQ(parse_shard_mode("clips"), ShardMode::Clips);
  EXPECT_DOUBLE_EQ(imbalance({0, 0}), 1.0);
}

}  // namespace
