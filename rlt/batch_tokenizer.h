// The run-length tokenizer for a whole batch, written with tensor ops, so it runs on whichever device holds
// the frames. On a GPU the pixels never come back to the host: a training step uploads the frames once, and
// the static scores, the keep mask, the run lengths and the packed tubelets are all computed there.
//
//   frames [B, T, 3, H, W] (float32, on the CPU or a GPU)
//     -> view as [B, T', u, 3, H', p, W', p]; first / last frame of each tubelet (a view, no copy)
//     -> static scores [B, T', H', W']  mean |last(t) - first(reference)| over (c, y, x)   (one pass)
//     -> keep mask      score > tau     (t = 0 always kept)
//     -> run lengths    [B, T', H', W'] int32, 0 where dropped: a backward sweep over t', all clips at once
//     -> the lengths come to the host (B * T'H'W' int32: kilobytes, next to megabytes of frames), where
//        the TokenLayout is built (it is host metadata: counts, coordinates, the gather index)
//     -> packed tubelets [N_total, 3 u p p] = a gather of the kept rows of the tubelet view (on the device)
//
// It computes exactly what rlt/tokenizer.cpp computes clip by clip with loops (that file is the readable
// reference; tests/rlt/test_batch_tokenizer.cpp checks the two agree token for token): scores summed in
// float64 and rounded to float32 as there, the strict comparison with tau in float64, the same (t, h, w)
// raster order, the same Philox draws for DropPolicy::Random (drawn on the host, one generator per clip).
#pragma once
#include <vector>

#include "rlt/tokenizer.h"

namespace glance::rlt {

// Static scores of a batch: float32 [B, T', H', W'] on the frames' device, +infinity at t' = 0.
Tensor static_scores_batch(const Tensor& frames, const TokenizerConfig& config);

// Run lengths from a keep mask (bool [B, T', H', W'], any device): int32 [B, T', H', W'], 0 where dropped.
Tensor run_lengths_batch(const Tensor& keep);

// The whole tokenizer for a batch. drop_generators: one per clip, used by DropPolicy::Random only (as
// tokenize()'s gen). The packed tubelets stay on the frames' device; the layout is on the host.
PackedClips tokenize_batch(const Tensor& frames, const TokenizerConfig& config,
                           std::vector<Generator>* drop_generators = nullptr);

}  // namespace glance::rlt
