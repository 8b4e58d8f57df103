// How a global batch of B clips is shared out among the ranks of a data-parallel run.
//
//   by clips:  rank r takes the positions [r*B/N, (r+1)*B/N) of the batch (the first B % N ranks one more).
//              Every rank loads only its own clips, but an RLT clip of a still camera has a few hundred
//              tokens and one of a panning camera thousands, so equal clips are not equal work.
//   by tokens: every rank tokenizes the whole batch (the counts decide the split), then takes a share of
//              about the same number of tokens: the clips in decreasing token count each go to the rank with
//              the fewest tokens so far (ties: the lower rank; equal counts: the earlier clip first), the
//              greedy "longest processing time first" rule, within 4/3 of the best possible maximum.
//              Each rank then keeps its clips in batch order.
//
// Both are pure functions of (B, N, token counts): every rank computes the same split without talking.
// A rank never gets no clip when B >= N (the first N clips placed go one to each rank).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace glance::dist {

enum class ShardMode { Clips, Tokens };
ShardMode parse_shard_mode(const std::string& text);  // "clips" | "tokens"; throws naming the value
const char* shard_mode_name(ShardMode mode);

// shards[r]: the batch positions rank r takes, increasing. Throws when batch < ranks or ranks < 1.
std::vector<std::vector<int64_t>> shard_by_clips(int64_t batch, int ranks);
std::vector<std::vector<int64_t>> shard_by_tokens(const std::vector<int64_t>& tokens_per_clip, int ranks);

// The tokens each rank holds under `shards`.
std::vector<int64_t> tokens_per_rank(const std::vector<int64_t>& tokens_per_clip,
                                     const std::vector<std::vector<int64_t>>& shards);
// max / mean of the ranks' token counts: 1 is a perfect balance; the step waits for the slowest rank, so
// 1.25 means a quarter of the mean rank's time is spent waiting. 1 when there are no tokens.
double imbalance(const std::vector<int64_t>& tokens_per_rank);

}  // namespace glance::dist
