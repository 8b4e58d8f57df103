// glance visualize: one PNG per clip showing what run-length tokenization keeps.
//
// The clip is drawn as a row of panels, one per time step t' of the token grid (the first frame of each
// tubelet). A kept tubelet is drawn in colour with its run length (in tubelets) in its top-left corner;
// a dropped tubelet is greyed out: its content is carried by the kept token that starts its run.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "rlt/clip_datasets.h"
#include "rlt/image.h"
#include "rlt/tokenizer.h"
#include "rlt/transforms.h"

namespace glance::cli {

namespace {

// 3 x 5 pixel digits, one row per 3 bits (MSB = left column).
constexpr uint8_t kDigits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                    {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                    {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

void fill_rect(rlt::Image& im, int64_t y0, int64_t x0, int64_t h, int64_t w, const uint8_t rgb[3]) {
  for (int64_t y = std::max<int64_t>(y0, 0); y < std::min(y0 + h, im.height); ++y) {
    for (int64_t x = std::max<int64_t>(x0, 0); x < std::min(x0 + w, im.width); ++x) std::copy(rgb, rgb + 3, im.at(y, x));
  }
}

// Draws `n` at (y, x) in white on a black box, each font pixel `s` x `s` screen pixels.
void draw_number(rlt::Image& im, int64_t y, int64_t x, int n, int64_t s) {
  const std::string text = std::to_string(n);
  const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
  fill_rect(im, y, x, 7 * s, (4 * int64_t(text.size()) + 1) * s, black);
  for (size_t k = 0; k < text.size(); ++k) {
    const auto& glyph = kDigits[text[k] - '0'];
    for (int64_t r = 0; r < 5; ++r) {
      for (int64_t c = 0; c < 3; ++c) {
        if (glyph[r] & (4 >> c)) fill_rect(im, y + (r + 1) * s, x + (int64_t(k) * 4 + c + 1) * s, s, s, white);
      }
    }
  }
}

// Back from ImageNet-normalised floats to bytes: frame f of clip [T, 3, H, W].
rlt::Image frame_image(const Tensor& clip, int64_t f) {
  const int64_t H = clip.size(2), W = clip.size(3);
  rlt::Image im(H, W);
  const float* d = clip.data<float>() + f * 3 * H * W;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < H * W; ++i) {
      const double v = (d[c * H * W + i] * rlt::kImageNetStd[c] + rlt::kImageNetMean[c]) * 255.0;
      im.rgb[i * 3 + c] = static_cast<uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
    }
  }
  return im;
}

// Draws `clip` with what `tok` (the clip tokenized with `t`) kept of it.
rlt::Image render(const Tensor& clip_in, const rlt::TokenizedClip& tok, const rlt::TokenizerConfig& t, int64_t scale) {
  const Tensor clip = ops::contiguous(clip_in);
  const nn::Grid g = tok.grid;
  std::vector<int32_t> length(static_cast<size_t>(g.size()), 0);  // 0 = dropped
  for (int64_t i = 0; i < tok.tokens(); ++i) length[g.index(tok.t[i], tok.h[i], tok.w[i])] = tok.length[i];

  const int64_t H = clip.size(2), W = clip.size(3), gap = 6, per_row = std::min<int64_t>(g.t, 8);
  const int64_t rows = (g.t + per_row - 1) / per_row, ph = H * scale, pw = W * scale;
  rlt::Image out(rows * ph + (rows + 1) * gap, per_row * pw + (per_row + 1) * gap, 255);
  const int64_t digit = std::max<int64_t>(1, t.patch * scale / 16);
  for (int64_t tt = 0; tt < g.t; ++tt) {
    const rlt::Image frame = frame_image(clip, tt * t.tubelet);
    const int64_t oy = gap + (tt / per_row) * (ph + gap), ox = gap + (tt % per_row) * (pw + gap);
    for (int64_t y = 0; y < ph; ++y) {
      for (int64_t x = 0; x < pw; ++x) {
        const uint8_t* src = frame.at(y / scale, x / scale);
        uint8_t* dst = out.at(oy + y, ox + x);
        const bool kept = length[g.index(tt, (y / scale) / t.patch, (x / scale) / t.patch)] > 0;
        if (kept) {
          std::copy(src, src + 3, dst);
        } else {  // grey, washed out towards white
          const double luma = 0.299 * src[0] + 0.587 * src[1] + 0.114 * src[2];
          std::fill(dst, dst + 3, static_cast<uint8_t>(0.35 * luma + 0.65 * 235.0));
        }
      }
    }
    for (int64_t h = 0; h < g.h; ++h) {
      for (int64_t w = 0; w < g.w; ++w) {
        const int32_t l = length[g.index(tt, h, w)];
        if (l > 0) draw_number(out, oy + h * t.patch * scale + 1, ox + w * t.patch * scale + 1, l, digit);
      }
    }
  }
  return out;
}

}  // namespace

int run_visualize(int argc, char** argv) {
  Args a("glance visualize",
         "Draw each clip as a row of time steps: kept tubelets in colour with their run length, dropped ones\n"
         "greyed out. Reads a folder of frames, or clips of the built-in dataset when no folder is given.");
  a.option("frames-dir", "", "a folder of frames (default: the built-in dataset)");
  a.option("out", "runs/visualize", "output folder (one PNG per clip)");
  a.option("clip", "0", "built-in dataset: first clip index", Range::integers(0, 10000000));
  a.option("count", "4", "clips to draw", Range::integers(1, 10000));
  a.option("seed", "0", "built-in dataset seed", Range::integers(0, INT64_MAX));
  a.option("frames", "16", "frames per clip", Range::integers(2, rlt::ModelLimits::frames));
  a.option("size", "32", "built-in dataset: frame side; frames dir: centre-crop and resize (0: keep)", Range::integers(0, rlt::ModelLimits::image_size));
  add_motion_options(a, "built-in dataset: ");
  a.option("interval", "1", "frames dir: take every interval-th frame", Range::integers(1, 10000));
  a.option("tau", "0.1", "keep a tubelet iff its static score is > tau", Range::numbers(0, 1000));
  a.option("patch", "8", "tubelet side in pixels", Range::integers(1, rlt::ModelLimits::image_size));
  a.option("tubelet", "2", "frames per tubelet", Range::integers(1, rlt::ModelLimits::frames));
  a.option("compare", "adjacent", "adjacent or anchor");
  a.option("scale", "4", "screen pixels per frame pixel", Range::integers(1, 64));
  add_frame_limit_option(a);
  if (!a.parse(argc, argv)) return 0;
  rlt::TokenizerConfig t;
  t.tubelet = a.integer("tubelet"), t.patch = a.integer("patch"), t.tau = a.number("tau");
  t.compare = rlt::parse_compare_mode(a.str("compare"));

  std::vector<std::pair<std::string, Tensor>> clips;  // (file stem, clip)
  if (!a.str("frames-dir").empty()) {
    rlt::ClipSampling s{.frames_per_clip = a.integer("frames"), .interval = a.integer("interval")};
    const std::vector<Tensor> folder = rlt::clips_of_folder(a.str("frames-dir"), s, a.integer("size"), a.integer("max-frame-side"));
    for (size_t k = 0; k < folder.size() && int64_t(k) < a.integer("count"); ++k) clips.push_back({"clip_" + std::to_string(k), folder[k]});
  } else {
    rlt::SyntheticVideoConfig c;
    c.count = a.integer("clip") + a.integer("count");
    c.frames = a.integer("frames"), c.size = a.integer("size"), c.seed = static_cast<uint64_t>(a.integer("seed"));
    motion_options_into(a, c);
    rlt::SyntheticVideo video(c);
    for (int64_t i = a.integer("clip"); i < c.count; ++i) {
      clips.push_back({"clip_" + std::to_string(i) + "_" + rlt::SyntheticVideo::class_names()[video.label(i)], video.clip_tensor(i)});
    }
  }
  std::filesystem::create_directories(a.str("out"));
  for (const auto& [stem, clip] : clips) {
    const std::string path = a.str("out") + "/" + stem + ".png";
    const rlt::TokenizedClip tok = rlt::tokenize(clip, t);
    rlt::save_png(path, render(clip, tok, t, a.integer("scale")));
    std::cout << path << ": kept " << tok.tokens() << " of " << tok.grid_tokens() << " tubelets\n";
  }
  return 0;
}

}  // namespace glance::cli
