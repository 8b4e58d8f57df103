#include "dist/sharding.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace glance::dist {

ShardMode parse_shard_mode(const std::string& text) {
  if (text == "clips") return ShardMode::Clips;
  if (text == "tokens") return ShardMode::Tokens;
  throw std::invalid_argument("--shard must be clips or tokens, got '" + text + "'");
}

const char* shard_mode_name(ShardMode mode) { return mode == ShardMode::Clips ? "clips" : "tokens"; }

namespace {
void check_sizes(int64_t batch, int ranks) {
  if (ranks < 1) throw std::invalid_argument("sharding: " + std::to_string(ranks) + " ranks");
  if (batch < ranks) {
    throw std::invalid_argument("a batch of " + std::to_string(batch) + " clips cannot give each of " +
                                std::to_string(ranks) + " ranks a clip: --batch-size is the global batch, "
                                "give at least one clip per rank");
  }
}
}  // namespace

std::vector<std::vector<int64_t>> shard_by_clips(int64_t batch, int ranks) {
  check_sizes(batch, ranks);
  std::vector<std::vector<int64_t>> shards(static_cast<size_t>(ranks));
  const int64_t base = batch / ranks, extra = batch % ranks;
  int64_t position = 0;
  for (int r = 0; r < ranks; ++r) {
    const int64_t count = base + (r < extra ? 1 : 0);
    for (int64_t k = 0; k < count; ++k) shards[static_cast<size_t>(r)].push_back(position++);
  }
  return shards;
}

std::vector<std::vector<int64_t>> shard_by_tokens(const std::vector<int64_t>& tokens, int ranks) {
  const int64_t batch = static_cast<int64_t>(tokens.size());
  check_sizes(batch, ranks);
  std::vector<int64_t> order(tokens.size());
  std::iota(order.begin(), order.end(), 0);
  // Decreasing token count; equal counts keep batch order, so the split is the same on every rank.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return tokens[a] > tokens[b]; });
  std::vector<std::vector<int64_t>> shards(static_cast<size_t>(ranks));
  std::vector<int64_t> load(static_cast<size_t>(ranks), 0);
  for (int64_t position : order) {
    // The lightest rank; among equals the one with fewer clips, then the lower rank (so the first N clips
    // go one to each rank even when some have no tokens).
    size_t best = 0;
    for (size_t r = 1; r < load.size(); ++r) {
      if (load[r] < load[best] || (load[r] == load[best] && shards[r].size() < shards[best].size())) best = r;
    }
    shards[best].push_back(position);
    load[best] += tokens[static_cast<size_t>(position)];
  }
  for (auto& shard : shards) std::sort(shard.begin(), shard.end());
  return shards;
}

std::vector<int64_t> tokens_per_rank(const std::vector<int64_t>& tokens, const std::vector<std::vector<int64_t>>& shards) {
  std::vector<int64_t> per_rank;
  for (const auto& shard : shards) {
    int64_t sum = 0;
    for (int64_t position : shard) sum += tokens.at(static_cast<size_t>(position));
    per_rank.push_back(sum);
  }
  return per_rank;
}

double imbalance(const std::vector<int64_t>& per_rank) {
  if (per_rank.empty()) return 1.0;
  const int64_t total = std::accumulate(per_rank.begin(), per_rank.end(), int64_t{0});
  if (total == 0) return 1.0;
  const double mean = double(total) / double(per_rank.size());
  return double(*std::max_element(per_rank.begin(), per_rank.end())) / mean;
}

}  // namespace glance::dist
