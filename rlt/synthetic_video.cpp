// How a clip is made, in three steps, from a key that is a hash of (seed, i):
//   1. plan_scene: draw everything random (background texture, pan direction, objects and their motion)
//      from the Philox stream of the key.
//   2. per frame t: sample the background texture at the camera's offset for t, then draw each object's
//      pose at t over it.
//   3. add sensor noise, from a separate hash of the same key (so noise never moves the scene).
// Nothing is shared between calls, so clips can be made on any thread, in any order.
#include "rlt/synthetic_video.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <stdexcept>

#include "tensor/random.h"

namespace glance::rlt {

namespace {

constexpr double kSideJitter = 0.15;       // each object's side is object_size * U(1 - j, 1 + j)
constexpr double kGrowLow = 0.5, kGrowHigh = 1.5;  // grow / shrink: side goes from 0.5x to 1.5x (or back)
constexpr double kMaxSpin = std::numbers::pi / 6;  // rotate: at most 30 degrees per frame (no wagon wheel)
constexpr float kBackgroundMax = 150.0f;   // background channels stay <= 150 ...
constexpr double kObjectMinValue = 0.85;   // ... object colours have a channel >= 0.85 * 255 = 217
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;  // 2^64 / golden ratio: SplitMix64's increment
constexpr uint64_t kNoiseStream = 0x6E6F697365ULL;  // "noise": the noise hash's key is apart from the scene's

// SplitMix64's output function: a bijective 64-bit mix. splitmix64(key + k * kGolden) for k = 0, 1, ...
// is the SplitMix64 random sequence seeded with key.
inline uint64_t splitmix64(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The Philox key of clip i (and, for i = -1, of the label permutation).
uint64_t clip_key(uint64_t seed, int64_t i) { return splitmix64(splitmix64(seed) + static_cast<uint64_t>(i)); }

// Random words from Philox4x32-10 at (key, counter), (key, counter + 1), ...: four words per block.
class Stream {
 public:
  Stream(uint64_t key, uint64_t counter) : key_(key), counter_(counter) {}
  uint32_t next() {
    if (used_ == 4) block_ = philox4x32_10(key_, counter_++), used_ = 0;
    return block_.x[used_++];
  }
  double uniform() { return next() * 0x1p-32; }  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }

 private:
  uint64_t key_, counter_;
  PhiloxBlock block_{};
  int used_ = 4;
};

// ---------------------------------------------------------------- the scene

enum class Form { Square, Disc, Triangle, L, Bar };

// Is the point (u, v), in units of half the side, with v pointing down, inside the shape?
bool inside(Form form, double u, double v) {
  if (std::abs(u) > 1.0 || std::abs(v) > 1.0) return false;
  switch (form) {
    case Form::Square: return true;
    case Form::Disc: return u * u + v * v <= 1.0;
    case Form::Triangle: return std::abs(u) <= 0.5 * (v + 1.0);  // apex up, base down: no rotational symmetry
    case Form::L: return u <= -0.3 || v >= 0.3;                   // no symmetry at all
    case Form::Bar: return std::abs(v) <= 0.4;                    // 180-degree symmetry only
  }
  return false;
}

struct Object {
  Form form;
  uint8_t colour[3];
  double x0, y0;    // centre at frame 0, pixels
  double vx, vy;    // pixels per frame (translate, bounce)
  double side;      // pixels (grow / shrink scale it over time)
  double angle0;    // radians
  double spin;      // radians per frame (rotate)
};

struct Pose { double cx, cy, side, angle; };

struct Scene {
  int64_t label = 0;
  std::vector<Object> objects;
  // Background texture [tex_h, tex_w, 3] float grey levels, big enough for the whole pan.
  int64_t tex_h = 0, tex_w = 0;
  std::vector<float> texture;
  double origin_x = 0, origin_y = 0;  // where frame 0's top-left corner lies in the texture
  double pan_x = 0, pan_y = 0;        // pixels per frame
};

// Where object o is at frame t of T, for the clip's class.
Pose pose(const Object& o, int64_t label, int64_t t, int64_t T) {
  const double s = static_cast<double>(t) / static_cast<double>(T - 1);  // 0 -> 1 over the clip
  Pose p{o.x0, o.y0, o.side, o.angle0};
  switch (label) {
    case 0: case 1: case 2: case 3:  // right, left, down, up
      p.cx += o.vx * t, p.cy += o.vy * t;
      break;
    case 4: p.side = o.side * (kGrowLow + (kGrowHigh - kGrowLow) * s); break;   // grow
    case 5: p.side = o.side * (kGrowHigh - (kGrowHigh - kGrowLow) * s); break;  // shrink
    case 6: p.angle += o.spin * t; break;                                       // rotate
    case 7: {  // bounce: out along (vx, vy) for the first half, back for the second
      const double middle = 0.5 * static_cast<double>(T - 1);
      const double d = middle - std::abs(static_cast<double>(t) - middle);
      p.cx += o.vx * d, p.cy += o.vy * d;
      break;
    }
  }
  return p;
}

// A bright colour: random hue, saturation 0.6..1, value 0.85..1 (so one channel is >= 217, far above the
// background's 150).
void bright_colour(Stream& rng, uint8_t out[3]) {
  const double h = rng.uniform() * 6.0, s = rng.uniform(0.6, 1.0), v = rng.uniform(kObjectMinValue, 1.0);
  const double c = v * s, x = c * (1.0 - std::abs(std::fmod(h, 2.0) - 1.0)), m = v - c;
  const int sector = static_cast<int>(h);
  double rgb[3] = {0, 0, 0};
  const int order[6][3] = {{0, 1, 2}, {1, 0, 2}, {1, 2, 0}, {2, 1, 0}, {2, 0, 1}, {0, 2, 1}};  // c, x, 0
  rgb[order[sector][0]] = c, rgb[order[sector][1]] = x;
  for (int k = 0; k < 3; ++k) out[k] = static_cast<uint8_t>(std::lround(255.0 * (rgb[k] + m)));
}

// The static texture: a smooth gradient between two dark colours, plus tinted stripes (a triangle wave at
// a random angle) and value noise (random values on a coarse lattice, smoothly interpolated). The stripes
// and noise give every region some detail, so a panning camera changes nearly every pixel.
void make_texture(Stream& rng, Scene& scene) {
  double a[3], b[3], tint[3];
  for (int k = 0; k < 3; ++k) a[k] = rng.uniform(45, 95), b[k] = rng.uniform(45, 95), tint[k] = rng.uniform(0.5, 1.0);
  const double g_angle = rng.uniform(0, 2 * std::numbers::pi);
  const double gx = std::cos(g_angle), gy = std::sin(g_angle);
  const double period = rng.uniform(6, 14), s_angle = rng.uniform(0, 2 * std::numbers::pi);
  const double kx = std::cos(s_angle) / period, ky = std::sin(s_angle) / period, phase = rng.uniform();
  const double stripe_amp = rng.uniform(15, 30), noise_amp = rng.uniform(15, 30), cell = rng.uniform(3, 6);

  const int64_t H = scene.tex_h, W = scene.tex_w;
  const int64_t lw = static_cast<int64_t>(W / cell) + 2, lh = static_cast<int64_t>(H / cell) + 2;
  std::vector<float> lattice(static_cast<size_t>(lw * lh));
  for (float& value : lattice) value = static_cast<float>(rng.uniform(-1, 1));
  auto smooth = [](double f) { return f * f * (3 - 2 * f); };

  const double extent = static_cast<double>(std::max(H, W));
  scene.texture.resize(static_cast<size_t>(H * W * 3));
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const double g = std::clamp(0.5 + ((x - 0.5 * W) * gx + (y - 0.5 * H) * gy) / extent, 0.0, 1.0);
      const double w = x * kx + y * ky + phase;
      const double stripe = 2.0 * std::abs(2.0 * (w - std::floor(w)) - 1.0) - 1.0;  // triangle wave in [-1, 1]
      const double lx = x / cell, ly = y / cell;
      const int64_t ix = static_cast<int64_t>(lx), iy = static_cast<int64_t>(ly);
      const double fx = smooth(lx - ix), fy = smooth(ly - iy);
      const float* row0 = &lattice[static_cast<size_t>(iy * lw + ix)];
      const float* row1 = row0 + lw;
      const double n = (1 - fy) * ((1 - fx) * row0[0] + fx * row0[1]) + fy * ((1 - fx) * row1[0] + fx * row1[1]);
      float* texel = &scene.texture[static_cast<size_t>((y * W + x) * 3)];
      for (int k = 0; k < 3; ++k) {
        const double value = a[k] + (b[k] - a[k]) * g + stripe_amp * tint[k] * stripe + noise_amp * n;
        texel[k] = std::clamp(static_cast<float>(value), 0.0f, kBackgroundMax);
      }
    }
  }
}

// Draws everything random for one clip. The start positions keep every object wholly inside the frame
// for the whole clip (the constructor checked that this is possible).
Scene plan_scene(const SyntheticVideoConfig& cfg, uint64_t key, int64_t label, bool with_objects) {
  Stream rng(key, 0);
  Scene scene;
  scene.label = label;
  const int64_t S = cfg.size, T = cfg.frames;

  // Camera pan: a random direction; the texture is the frame plus the distance travelled (one side).
  const double pan_angle = rng.uniform(0, 2 * std::numbers::pi);
  scene.pan_x = cfg.pan * std::cos(pan_angle), scene.pan_y = cfg.pan * std::sin(pan_angle);
  const double travel_x = std::abs(scene.pan_x) * (T - 1), travel_y = std::abs(scene.pan_y) * (T - 1);
  scene.origin_x = scene.pan_x < 0 ? travel_x : 0.0;
  scene.origin_y = scene.pan_y < 0 ? travel_y : 0.0;
  scene.tex_w = S + static_cast<int64_t>(std::ceil(travel_x)) + 1;  // + 1: the bilinear neighbour
  scene.tex_h = S + static_cast<int64_t>(std::ceil(travel_y)) + 1;
  make_texture(rng, scene);
  if (!with_objects) return scene;

  // The motion's direction is shared by all objects (bounce: one random axis per clip), so objects that
  // start apart stay apart: they all move by the same vector, or grow / spin in place.
  const double direction[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};  // right, left, down, up
  double dx = 0, dy = 0, steps = 0;  // unit direction, and how many frames' worth of it the path is
  if (label < 4) {
    dx = direction[label][0], dy = direction[label][1], steps = static_cast<double>(T - 1);
  } else if (label == 7) {
    const double axis = rng.uniform(0, 2 * std::numbers::pi);
    dx = std::cos(axis), dy = std::sin(axis), steps = 0.5 * static_cast<double>(T - 1);
  }
  std::vector<double> reaches;
  for (int64_t n = 0; n < cfg.objects; ++n) {
    Object o{};
    // rotate needs a shape whose rotation shows: triangle, L or bar; the others take any shape.
    o.form = label == 6 ? static_cast<Form>(2 + rng.below(3)) : static_cast<Form>(rng.below(5));
    bright_colour(rng, o.colour);
    o.side = cfg.object_size * rng.uniform(1 - kSideJitter, 1 + kSideJitter);
    o.angle0 = rng.uniform(0, 2 * std::numbers::pi);
    o.spin = (rng.uniform() < 0.5 ? -1 : 1) * std::min(cfg.speed / (0.5 * o.side), kMaxSpin);
    o.vx = cfg.speed * dx, o.vy = cfg.speed * dy;
    // Start position: the pose's reach (half-diagonal of its largest side) plus the path stay inside.
    const double largest = (label == 4 || label == 5) ? o.side * kGrowHigh : o.side;
    const double reach = largest / std::numbers::sqrt2;
    auto place = [&](double path) {
      const double low = reach - std::min(0.0, path), high = static_cast<double>(S) - reach - std::max(0.0, path);
      return high > low ? rng.uniform(low, high) : 0.5 * (low + high);
    };
    // Up to 16 tries for a start whose reach overlaps no earlier object's; else the try with most room.
    double best = -1e300;
    for (int attempt = 0; attempt < 16 && best < 0; ++attempt) {
      const double x = place(o.vx * steps), y = place(o.vy * steps);
      double room = 1e300;
      for (size_t k = 0; k < scene.objects.size(); ++k) {
        const Object& other = scene.objects[k];
        room = std::min(room, std::hypot(x - other.x0, y - other.y0) - reach - reaches[k]);
      }
      if (room > best) best = room, o.x0 = x, o.y0 = y;
    }
    scene.objects.push_back(o);
    reaches.push_back(reach);
  }
  return scene;
}

// ---------------------------------------------------------------- rendering

// Frame t's background [S, S, 3]: the texture seen from the camera's position at t. The shift is the
// same for every pixel, so one set of bilinear weights serves the whole frame; with pan = 0 the weights
// are (1, 0, 0, 0) and every frame is the same, bit for bit.
void render_background(const Scene& scene, int64_t S, int64_t t, uint8_t* frame) {
  const double ox = scene.origin_x + scene.pan_x * t, oy = scene.origin_y + scene.pan_y * t;
  const int64_t ix = std::clamp<int64_t>(static_cast<int64_t>(std::floor(ox)), 0, scene.tex_w - S - 1);
  const int64_t iy = std::clamp<int64_t>(static_cast<int64_t>(std::floor(oy)), 0, scene.tex_h - S - 1);
  const float fx = static_cast<float>(std::clamp(ox - ix, 0.0, 1.0)), fy = static_cast<float>(std::clamp(oy - iy, 0.0, 1.0));
  const float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
  const int64_t W = scene.tex_w;
  for (int64_t y = 0; y < S; ++y) {
    const float* r0 = &scene.texture[static_cast<size_t>(((iy + y) * W + ix) * 3)];
    const float* r1 = r0 + W * 3;
    uint8_t* out = frame + y * S * 3;
    for (int64_t j = 0; j < S * 3; ++j) {
      const float v = w00 * r0[j] + w01 * r0[j + 3] + w10 * r1[j] + w11 * r1[j + 3];
      out[j] = static_cast<uint8_t>(v + 0.5f);  // v in [0, 150]: round to nearest
    }
  }
}

// Paints every object's pose at frame t (later objects over earlier ones). Only the pixels of each
// object's bounding box are visited; a pixel is inside when its centre, rotated into the shape's own
// frame, passes inside().
void draw_objects(const Scene& scene, int64_t S, int64_t T, int64_t t, uint8_t* frame) {
  for (const Object& o : scene.objects) {
    const Pose p = pose(o, scene.label, t, T);
    const double half = 0.5 * p.side, reach = half * std::numbers::sqrt2 + 1.0;
    const double c = std::cos(p.angle) / half, s = std::sin(p.angle) / half;
    const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(p.cx - reach)));
    const int64_t x1 = std::min<int64_t>(S - 1, static_cast<int64_t>(std::ceil(p.cx + reach)));
    const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(p.cy - reach)));
    const int64_t y1 = std::min<int64_t>(S - 1, static_cast<int64_t>(std::ceil(p.cy + reach)));
    for (int64_t y = y0; y <= y1; ++y) {
      const double dy = y + 0.5 - p.cy;
      for (int64_t x = x0; x <= x1; ++x) {
        const double dx = x + 0.5 - p.cx;
        if (!inside(o.form, dx * c + dy * s, -dx * s + dy * c)) continue;
        uint8_t* px = frame + (y * S + x) * 3;
        px[0] = o.colour[0], px[1] = o.colour[1], px[2] = o.colour[2];
      }
    }
  }
}

// 4096 quantiles of N(0, 1), at (k + 0.5) / 4096: a uniform 12-bit index then picks a normal sample
// (inverse-transform sampling; tails reach +-3.5 std). Far cheaper per sample than Box-Muller, and
// computed once (a thread-safe function-local static) by bisection on the normal CDF.
const std::array<float, 4096>& normal_quantiles() {
  static const std::array<float, 4096> table = [] {
    std::array<float, 4096> q{};
    for (size_t k = 0; k < q.size(); ++k) {
      const double p = (static_cast<double>(k) + 0.5) / static_cast<double>(q.size());
      double lo = -8, hi = 8;
      for (int it = 0; it < 50; ++it) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::numbers::sqrt2) < p ? lo : hi) = mid;
      }
      q[k] = static_cast<float>(0.5 * (lo + hi));
    }
    return q;
  }();
  return table;
}

// Sensor noise: x + N(0, std) for every channel of every pixel of every frame, rounded and clamped.
// Pixels are integers, so round(x + std * z) = x + round(std * z): the table of quantiles is scaled and
// rounded once per clip, and the per-sample work is integer only. A clip needs ~200k samples, so their
// random bits come from SplitMix64 (one multiply-xorshift hash of the position, inlined, 4 samples of 16
// bits per 64-bit output) rather than from a Philox block (10 rounds, out of line): 4x cheaper here, and
// still a pure function of (clip key, frame, position).
void add_noise(uint64_t key, double std, std::vector<Image>& frames) {
  const auto& q = normal_quantiles();
  std::array<int32_t, 4096> delta;
  for (size_t k = 0; k < q.size(); ++k) delta[k] = static_cast<int32_t>(std::lround(std * q[k]));
  const uint64_t noise_key = splitmix64(key ^ kNoiseStream);
  for (size_t t = 0; t < frames.size(); ++t) {
    // Plain pointers: through a uint8_t store the compiler must assume the vector itself changed.
    uint8_t* px = frames[t].rgb.data();
    const size_t n = frames[t].rgb.size();
    const uint64_t base = noise_key + t * kGolden * ((n + 3) / 4);
    for (size_t j = 0; j < n; j += 4) {
      const uint64_t bits = splitmix64(base + (j / 4) * kGolden);
      for (size_t k = 0; k < 4 && j + k < n; ++k) {
        const int32_t v = px[j + k] + delta[(bits >> (16 * k)) & 4095u];
        px[j + k] = static_cast<uint8_t>(std::min(std::max(v, 0), 255));
      }
    }
  }
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------- SyntheticVideo

SyntheticVideo::SyntheticVideo(SyntheticVideoConfig config) : config_(config) {
  const auto& c = config_;
  auto fail = [](const std::string& field, const std::string& value, const std::string& why) {
    throw std::invalid_argument("SyntheticVideoConfig." + field + " = " + value + ": " + why);
  };
  if (c.count < 1) fail("count", std::to_string(c.count), "need at least 1 clip");
  if (c.frames < 2) fail("frames", std::to_string(c.frames), "need at least 2 frames (motion needs two)");
  if (c.size < 8) fail("size", std::to_string(c.size), "need at least 8 pixels");
  if (c.objects < 1) fail("objects", std::to_string(c.objects), "need at least 1 object");
  if (c.object_size < 2) fail("object_size", std::to_string(c.object_size), "need at least 2 pixels");
  if (!(c.speed >= 0) || !std::isfinite(c.speed)) fail("speed", num(c.speed), "need a finite value >= 0");
  if (!(c.pan >= 0) || !std::isfinite(c.pan)) fail("pan", num(c.pan), "need a finite value >= 0");
  if (!(c.noise >= 0) || !std::isfinite(c.noise)) fail("noise", num(c.noise), "need a finite value >= 0");

  // Fit: the largest object at any angle (its diagonal), and then that plus the longest path.
  const double largest = c.object_size * (1 + kSideJitter);
  const double grown_diagonal = largest * kGrowHigh * std::numbers::sqrt2;
  if (grown_diagonal > static_cast<double>(c.size)) {
    fail("object_size", std::to_string(c.object_size),
         "does not fit in size = " + std::to_string(c.size) + ": a growing object reaches a diagonal of " +
             num(grown_diagonal) + " px (1.5 x 1.15 x object_size x sqrt 2); lower object_size or raise size");
  }
  const double path = c.speed * static_cast<double>(c.frames - 1);
  const double needed = largest * std::numbers::sqrt2 + path;
  if (needed > static_cast<double>(c.size)) {
    fail("speed", num(c.speed),
         "too fast for frames = " + std::to_string(c.frames) + " and size = " + std::to_string(c.size) +
             ": an object of object_size " + std::to_string(c.object_size) + " travels " + num(path) +
             " px and needs " + num(needed) + " px; lower speed, frames or object_size, or raise size");
  }

  // The label permutation: Fisher-Yates from the stream of key (seed, -1).
  Stream rng(clip_key(c.seed, -1), 0);
  for (int64_t k = 0; k < kClasses; ++k) class_of_residue_[k] = k;
  for (int64_t k = kClasses - 1; k > 0; --k) std::swap(class_of_residue_[k], class_of_residue_[rng.below(k + 1)]);
}

const std::vector<std::string>& SyntheticVideo::class_names() {
  static const std::vector<std::string> names = {"right", "left", "down", "up", "grow", "shrink", "rotate", "bounce"};
  return names;
}

void SyntheticVideo::check_index(int64_t i) const {
  if (i < 0 || i >= config_.count) {
    throw std::out_of_range("SyntheticVideo: clip " + std::to_string(i) + " outside [0, " +
                            std::to_string(config_.count) + ")");
  }
}

int64_t SyntheticVideo::label(int64_t i) const {
  check_index(i);
  return class_of_residue_[i % kClasses];
}

std::vector<Image> SyntheticVideo::clip(int64_t i) const {
  const int64_t lbl = label(i);  // checks i
  const int64_t S = config_.size, T = config_.frames;
  const uint64_t key = clip_key(config_.seed, i);
  const Scene scene = plan_scene(config_, key, lbl, /*with_objects=*/true);
  std::vector<Image> frames;
  frames.reserve(static_cast<size_t>(T));
  std::vector<uint8_t> still;  // with pan = 0 every frame's background is the same: render it once
  for (int64_t t = 0; t < T; ++t) {
    Image& frame = frames.emplace_back(S, S);
    if (config_.pan == 0 && t > 0) {
      frame.rgb = still;
    } else {
      render_background(scene, S, t, frame.rgb.data());
      if (config_.pan == 0) still = frame.rgb;
    }
    draw_objects(scene, S, T, t, frame.rgb.data());
  }
  if (config_.noise > 0) add_noise(key, config_.noise, frames);
  return frames;
}

Image SyntheticVideo::background(int64_t i, int64_t t) const {
  check_index(i);
  if (t < 0 || t >= config_.frames) {
    throw std::out_of_range("SyntheticVideo: frame " + std::to_string(t) + " outside [0, " +
                            std::to_string(config_.frames) + ")");
  }
  // The scene's background is drawn before its objects, so planning without them gives the same texture.
  const Scene scene = plan_scene(config_, clip_key(config_.seed, i), 0, /*with_objects=*/false);
  Image frame(config_.size, config_.size);
  render_background(scene, config_.size, t, frame.rgb.data());
  return frame;
}

Tensor SyntheticVideo::clip_tensor(int64_t i) const {
  // (v / 255 - mean[c]) / std[c] for every byte value v and channel c.
  static const std::array<std::array<float, 256>, 3> normalise = [] {
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    std::array<std::array<float, 256>, 3> lut{};
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>((v / 255.0 - mean[c]) / std[c]);
    return lut;
  }();
  const std::vector<Image> frames = clip(i);
  const int64_t S = config_.size, T = config_.frames, plane = S * S;
  Tensor out = Tensor::empty({T, 3, S, S});
  float* dst = out.data<float>();
  for (int64_t t = 0; t < T; ++t) {  // [S, S, 3] interleaved -> [3, S, S] planes
    const uint8_t* src = frames[static_cast<size_t>(t)].rgb.data();
    float* f = dst + t * 3 * plane;
    for (int64_t p = 0; p < plane; ++p) {
      f[p] = normalise[0][src[3 * p]];
      f[plane + p] = normalise[1][src[3 * p + 1]];
      f[2 * plane + p] = normalise[2][src[3 * p + 2]];
    }
  }
  return out;
}

void SyntheticVideo::write_frames(const std::string& root, int64_t first, int64_t count) const {
  if (first < 0 || count < 0 || first + count > config_.count) {
    throw std::out_of_range("SyntheticVideo::write_frames: clips [" + std::to_string(first) + ", " +
                            std::to_string(first + count) + ") outside [0, " + std::to_string(config_.count) + ")");
  }
  for (int64_t i = first; i < first + count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "clip_%05lld", static_cast<long long>(i));
    const std::filesystem::path folder = std::filesystem::path(root) / class_names()[static_cast<size_t>(label(i))] / name;
    std::filesystem::create_directories(folder);
    const std::vector<Image> frames = clip(i);
    for (size_t t = 0; t < frames.size(); ++t) {
      std::snprintf(name, sizeof name, "%05zu.png", t);
      save_png((folder / name).string(), frames[t]);
    }
  }
}

}  // namespace glance::rlt
