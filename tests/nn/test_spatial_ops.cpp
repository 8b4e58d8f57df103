// The spatial primitives of nn/functional/: conv3d (and unfold3d), max_pool3d, avg_pool3d, grid_sample and
// bilinear_sample_points.
//  - values against naive nested-loop float64 references written here, over random shapes (stride 2,
//    padding 1, groups, depthwise, non-cubic kernels);
//  - tiny hand-computed cases (identity kernel, constant averages, the max, integer and half-integer
//    sampling points, zero padding outside, both align_corners conventions);
//  - float64 gradchecks of every function in every differentiable input;
//  - error messages that name the op and the shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "nn/functional/conv3d.h"
#include "nn/functional/grid_sample.h"
#include "nn/functional/pool3d.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using Inputs = std::vector<Tensor>;

constexpr DType F64 = DType::Float64;
constexpr DType F32 = DType::Float32;

std::vector<double> values(const Tensor& t) { return ops::to_dtype(t, F64).to_vector<double>(); }

Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  return ops::uniform(shape, low, high, dtype, &gen);
}

Tensor leaf(Tensor t) {
  t.set_requires_grad();
  return t;
}

void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& expected, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.shape(), shape) << what;
  const std::vector<double> g = values(got);
  ASSERT_EQ(g.size(), expected.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(g[i], expected[i], tol * std::max(1.0, std::abs(expected[i]))) << what << " at flat index " << i;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

::testing::AssertionResult Contains(const std::string& text, const std::string& piece) {
  if (text.find(piece) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << piece << "'";
}

#define EXPECT_GRADCHECK(f, inputs)                                \
  do {                                                             \
    autograd::GradcheckResult r_ = autograd::gradcheck((f), (inputs)); \
    EXPECT_TRUE(r_.ok) << r_.message;                              \
  } while (0)

// ---------------------------------------------------------------- naive float64 references

// x [B, C, T, H, W] as a flat vector, read with zero (or `pad`) outside.
struct Volume {
  std::vector<double> v;
  int64_t B, C, T, H, W;
  Volume(const Tensor& x)
      : v(values(x)), B(x.size(0)), C(x.size(1)), T(x.size(2)), H(x.size(3)), W(x.size(4)) {}
  double at(int64_t b, int64_t c, int64_t t, int64_t h, int64_t w, double pad) const {
    if (t < 0 || t >= T || h < 0 || h >= H || w < 0 || w >= W) return pad;
    return v[(((b * C + c) * T + t) * H + h) * W + w];
  }
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

// torch.nn.functional.conv3d by definition: six nested loops per output element.
std::vector<double> naive_conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Size3& s,
                                 const Size3& p, int64_t groups, Shape* shape) {
  const Volume in(x);
  const std::vector<double> w = values(weight);
  const std::vector<double> bv = bias.defined() ? values(bias) : std::vector<double>();
  const int64_t Co = weight.size(0), Cg = weight.size(1), kt = weight.size(2), kh = weight.size(3), kw = weight.size(4);
  const int64_t To = out_size(in.T, kt, s[0], p[0]), Ho = out_size(in.H, kh, s[1], p[1]), Wo = out_size(in.W, kw, s[2], p[2]);
  const int64_t Cog = Co / groups;
  *shape = {in.B, Co, To, Ho, Wo};
  std::vector<double> out;
  for (int64_t b = 0; b < in.B; ++b)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t o = 0; o < To; ++o)
        for (int64_t q = 0; q < Ho; ++q)
          for (int64_t r = 0; r < Wo; ++r) {
            double acc = bv.empty() ? 0.0 : bv[co];
            const int64_t g = co / Cog;
            for (int64_t ci = 0; ci < Cg; ++ci)
              for (int64_t i = 0; i < kt; ++i)
                for (int64_t j = 0; j < kh; ++j)
                  for (int64_t m = 0; m < kw; ++m) {
                    double xv = in.at(b, g * Cg + ci, o * s[0] + i - p[0], q * s[1] + j - p[1], r * s[2] + m - p[2], 0.0);
                    acc += xv * w[(((co * Cg + ci) * kt + i) * kh + j) * kw + m];
                  }
            out.push_back(acc);
          }
  return out;
}

// max_pool3d (pad -inf) or avg_pool3d (pad 0, divide by the full kernel volume) by definition.
std::vector<double> naive_pool3d(bool is_max, const Tensor& x, const Size3& k, const Size3& s, const Size3& p,
                                 Shape* shape) {
  const Volume in(x);
  const int64_t To = out_size(in.T, k[0], s[0], p[0]), Ho = out_size(in.H, k[1], s[1], p[1]),
                Wo = out_size(in.W, k[2], s[2], p[2]);
  *shape = {in.B, in.C, To, Ho, Wo};
  const double pad = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
  std::vector<double> out;
  for (int64_t b = 0; b < in.B; ++b)
    for (int64_t c = 0; c < in.C; ++c)
      for (int64_t o = 0; o < To; ++o)
        for (int64_t q = 0; q < Ho; ++q)
          for (int64_t r = 0; r < Wo; ++r) {
            double acc = is_max ? pad : 0.0;
            for (int64_t i = 0; i < k[0]; ++i)
              for (int64_t j = 0; j < k[1]; ++j)
                for (int64_t m = 0; m < k[2]; ++m) {
                  double v = in.at(b, c, o * s[0] + i - p[0], q * s[1] + j - p[1], r * s[2] + m - p[2], pad);
                  acc = is_max ? std::max(acc, v) : acc + v;
                }
            out.push_back(is_max ? acc : acc / static_cast<double>(k[0] * k[1] * k[2]));
          }
  return out;
}

// torch's grid_sample (bilinear, zeros) by definition, one output pixel at a time.
std::vector<double> naive_grid_sample(const Tensor& input, const Tensor& grid, bool align_corners) {
  const std::vector<double> in = values(input), gr = values(grid);
  const int64_t B = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t Ho = grid.size(1), Wo = grid.size(2);
  auto pixel = [&](double g, int64_t size) {
    return align_corners ? (g + 1) / 2 * (size - 1) : ((g + 1) * size - 1) / 2;
  };
  std::vector<double> out(B * C * Ho * Wo);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) {
        const double x = pixel(gr[((b * Ho + i) * Wo + j) * 2 + 0], W);
        const double y = pixel(gr[((b * Ho + i) * Wo + j) * 2 + 1], H);
        const int64_t x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
        const double fx = x - x0, fy = y - y0;
        for (int64_t c = 0; c < C; ++c) {
          auto at = [&](int64_t yy, int64_t xx) {
            return (yy < 0 || yy >= H || xx < 0 || xx >= W) ? 0.0 : in[((b * C + c) * H + yy) * W + xx];
          };
          out[((b * C + c) * Ho + i) * Wo + j] = (1 - fy) * (1 - fx) * at(y0, x0) + (1 - fy) * fx * at(y0, x0 + 1) +
                                                 fy * (1 - fx) * at(y0 + 1, x0) + fy * fx * at(y0 + 1, x0 + 1);
        }
      }
  return out;
}

struct ConvCase {
  const char* name;
  Shape x, weight;
  Size3 stride, padding;
  int64_t groups;
  bool with_bias;
};

const std::vector<ConvCase> kConvCases = {
    {"plain 3x3x3", {2, 3, 4, 5, 6}, {4, 3, 3, 3, 3}, {1, 1, 1}, {0, 0, 0}, 1, true},
    {"stride 2, padding 1", {2, 3, 5, 6, 7}, {4, 3, 3, 3, 3}, {2, 2, 2}, {1, 1, 1}, 1, true},
    {"non-cubic kernel, mixed stride and padding", {1, 2, 3, 7, 5}, {3, 2, 1, 3, 2}, {1, 2, 1}, {0, 1, 1}, 1, false},
    {"groups = 2", {2, 4, 4, 5, 5}, {6, 2, 2, 3, 3}, {1, 1, 2}, {1, 0, 1}, 2, true},
    {"depthwise", {2, 5, 4, 6, 6}, {5, 1, 3, 3, 3}, {2, 1, 1}, {1, 1, 1}, 5, true},
    {"depthwise, channel multiplier 2", {1, 3, 3, 4, 5}, {6, 1, 2, 2, 3}, {1, 2, 2}, {1, 1, 1}, 3, false},
    {"kernel = padded input", {1, 2, 2, 3, 3}, {2, 2, 4, 3, 5}, {1, 1, 1}, {1, 0, 1}, 1, true},
};

}  // namespace

// ---------------------------------------------------------------- conv3d and unfold3d

TEST(SpatialConv3d, MatchesNaiveLoopOnRandomShapes) {
  uint64_t seed = 100;
  for (const ConvCase& c : kConvCases) {
    for (DType dtype : {F32, F64}) {
      Tensor x = random_tensor(c.x, dtype, ++seed);
      Tensor w = random_tensor(c.weight, dtype, ++seed);
      Tensor b = c.with_bias ? random_tensor({c.weight[0]}, dtype, ++seed) : Tensor();
      Shape shape;
      std::vector<double> expected = naive_conv3d(x, w, b, c.stride, c.padding, c.groups, &shape);
      Tensor y = conv3d(x, w, b, {c.stride, c.padding, c.groups});
      expect_close(y, shape, expected, dtype == F64 ? 1e-12 : 1e-5,
                   std::string(c.name) + (dtype == F64 ? " (float64)" : " (float32)"));
    }
  }
}

TEST(SpatialConv3d, CentreTapKernelIsTheIdentity) {
  // weight[co, ci] = 1 at the centre tap when co == ci: with padding 1 every output equals its input.
  const int64_t C = 3;
  Tensor x = random_tensor({2, C, 3, 4, 5}, F32, 7);
  Tensor w = ops::zeros({C, C, 3, 3, 3});
  for (int64_t c = 0; c < C; ++c) w.data<float>()[((c * C + c) * 3 + 1) * 9 + 4] = 1.0f;
  EXPECT_EQ(conv3d(x, w, Tensor(), {{1, 1, 1}, {1, 1, 1}, 1}).to_vector<float>(), x.to_vector<float>());

  // Depthwise: one [1, 3, 3, 3] kernel per channel, the same centre tap.
  Tensor wd = ops::zeros({C, 1, 3, 3, 3});
  for (int64_t c = 0; c < C; ++c) wd.data<float>()[c * 27 + 13] = 1.0f;
  EXPECT_EQ(conv3d(x, wd, Tensor(), {{1, 1, 1}, {1, 1, 1}, C}).to_vector<float>(), x.to_vector<float>());
}

TEST(SpatialConv3d, HandComputedWindowSums) {
  // x = 1..9 as one 3x3 frame; a (1, 2, 2) kernel of ones sums each 2x2 block, plus the bias 0.5.
  Tensor x = ops::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 1, 3, 3});
  Tensor w = ops::ones({1, 1, 1, 2, 2});
  Tensor b = ops::from_vector<float>({0.5f});
  Tensor y = conv3d(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f}));
  // Stride 2 with padding 1: windows at rows/cols {-1, 0} and {1, 2}; the zeros add nothing.
  Tensor y2 = conv3d(x, w, Tensor(), {{1, 2, 2}, {0, 1, 1}, 1});
  ASSERT_EQ(y2.shape(), (Shape{1, 1, 1, 2, 2}));
  EXPECT_EQ(y2.to_vector<float>(), (std::vector<float>{1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9}));
}

TEST(SpatialConv3d, GradcheckInputWeightBias) {
  for (const ConvCase& c : {ConvCase{"stride 2, padding 1", {1, 2, 3, 4, 3}, {2, 2, 2, 3, 2}, {2, 2, 1}, {1, 1, 0}, 1, true},
                            ConvCase{"groups = 2", {1, 4, 2, 3, 3}, {2, 2, 1, 2, 2}, {1, 1, 1}, {0, 1, 0}, 2, true},
                            ConvCase{"depthwise", {2, 2, 2, 3, 3}, {2, 1, 2, 2, 2}, {1, 2, 1}, {1, 1, 1}, 2, true}}) {
    Inputs in{leaf(random_tensor(c.x, F64, 1)), leaf(random_tensor(c.weight, F64, 2)),
              leaf(random_tensor({c.weight[0]}, F64, 3))};
    auto f = [&c](const Inputs& v) { return conv3d(v[0], v[1], v[2], {c.stride, c.padding, c.groups}); };
    autograd::GradcheckResult r = autograd::gradcheck(f, in);
    EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  }
}

TEST(SpatialUnfold3d, WindowsFollowTheDocumentedLayout) {
  // windows[b, c, (i*kh + j)*kw + m, o, p, q] = x_padded[b, c, o*st + i, p*sh + j, q*sw + m]
  const Size3 k{2, 3, 2}, s{2, 1, 3}, p{1, 1, 0};
  Tensor x = random_tensor({2, 3, 3, 4, 5}, F64, 5);
  Tensor windows = unfold3d(x, k, s, p, 7.5);  // 7.5 marks the padding
  const int64_t To = out_size(3, 2, 2, 1), Ho = out_size(4, 3, 1, 1), Wo = out_size(5, 2, 3, 0);
  ASSERT_EQ(windows.shape(), (Shape{2, 3, 12, To, Ho, Wo}));
  const Volume in(x);
  std::vector<double> expected;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < k[0]; ++i)
        for (int64_t j = 0; j < k[1]; ++j)
          for (int64_t m = 0; m < k[2]; ++m)
            for (int64_t o = 0; o < To; ++o)
              for (int64_t q = 0; q < Ho; ++q)
                for (int64_t r = 0; r < Wo; ++r)
                  expected.push_back(in.at(b, c, o * s[0] + i - p[0], q * s[1] + j - p[1], r * s[2] + m - p[2], 7.5));
  EXPECT_EQ(values(windows), expected);
}

TEST(SpatialUnfold3d, GradcheckOverlappingWindows) {
  // Stride 1 with a 2x2x2 kernel: most elements sit in several windows, their gradients add up.
  auto f = [](const Inputs& v) { return unfold3d(v[0], {2, 2, 2}, {1, 1, 1}, {1, 0, 1}); };
  EXPECT_GRADCHECK(f, (Inputs{leaf(random_tensor({1, 2, 3, 3, 3}, F64, 9))}));
}

// ---------------------------------------------------------------- pooling

TEST(SpatialPool3d, MaxAndAvgMatchNaiveLoop) {
  struct Case {
    Shape x;
    Size3 kernel, stride, padding;
  };
  uint64_t seed = 200;
  for (const Case& c : {Case{{2, 3, 4, 6, 6}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}},
                        Case{{1, 2, 5, 7, 6}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}},
                        Case{{2, 2, 3, 5, 4}, {1, 3, 2}, {1, 2, 1}, {0, 1, 1}},
                        Case{{1, 3, 4, 4, 5}, {2, 3, 3}, {1, 1, 2}, {1, 1, 0}}}) {
    for (bool is_max : {true, false}) {
      // Negative values: a max that wrongly read zero padding would show.
      Tensor x = random_tensor(c.x, F32, ++seed, -2.0, -0.1);
      Shape shape;
      std::vector<double> expected = naive_pool3d(is_max, x, c.kernel, c.stride, c.padding, &shape);
      Tensor y = is_max ? max_pool3d(x, c.kernel, c.stride, c.padding) : avg_pool3d(x, c.kernel, c.stride, c.padding);
      expect_close(y, shape, expected, 1e-6, std::string(is_max ? "max" : "avg") + " of " + shape_str(c.x));
    }
  }
}

TEST(SpatialPool3d, AvgOfAConstantAndPaddingCounts) {
  Tensor x = ops::full({1, 2, 4, 4, 4}, 3.0);
  Tensor y = avg_pool3d(x, {2, 2, 2}, {2, 2, 2});
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2, 2, 2}));
  for (float v : y.to_vector<float>()) EXPECT_FLOAT_EQ(v, 3.0f);
  // count_include_pad: the corner window of a 3x3x3 kernel with padding 1 holds 2*2*2 real elements of 27.
  Tensor z = avg_pool3d(ops::full({1, 1, 3, 3, 3}, 3.0), {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  EXPECT_NEAR(values(z)[0], 3.0 * 8 / 27, 1e-6);
  EXPECT_NEAR(values(z)[13], 3.0, 1e-6);  // the centre window is all real
}

TEST(SpatialPool3d, MaxPicksTheMaxAndNeverThePadding) {
  Tensor x = ops::from_vector<float>({1, 5, 2, 0,   //
                                      3, 4, 8, -1},
                                     {1, 1, 1, 2, 4});
  EXPECT_EQ(max_pool3d(x, {1, 2, 2}, {1, 2, 2}).to_vector<float>(), (std::vector<float>{5, 8}));
  // All negative with padding 1: a zero-padded max would return 0 at the borders.
  Tensor neg = ops::from_vector<float>({-1, -2, -3, -4}, {1, 1, 1, 2, 2});
  EXPECT_EQ(max_pool3d(neg, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}).to_vector<float>(),
            (std::vector<float>{-1, -1, -1, -1}));
}

TEST(SpatialPool3d, MaxTiesShareTheGradient) {
  // Documented departure from torch: four equal maxima get a quarter of the gradient each.
  Tensor x = leaf(ops::ones({1, 1, 1, 2, 2}));
  sum(max_pool3d(x, {1, 2, 2}, {1, 2, 2})).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f}));
}

TEST(SpatialPool3d, GradcheckMaxAndAvg) {
  // Random normal values: ties (where max has no derivative) have probability 0.
  auto fmax = [](const Inputs& v) { return max_pool3d(v[0], {2, 3, 2}, {1, 2, 2}, {1, 1, 1}); };
  auto favg = [](const Inputs& v) { return avg_pool3d(v[0], {2, 3, 2}, {1, 2, 2}, {1, 1, 1}); };
  Generator gen(17);
  Inputs in{leaf(ops::randn({1, 2, 3, 4, 3}, F64, &gen))};
  EXPECT_GRADCHECK(fmax, in);
  EXPECT_GRADCHECK(favg, in);
  auto foverlap = [](const Inputs& v) { return max_pool3d(v[0], {2, 2, 2}, {1, 1, 1}); };  // overlapping windows
  EXPECT_GRADCHECK(foverlap, in);
}

// ---------------------------------------------------------------- grid_sample and bilinear_sample_points

TEST(SpatialGridSample, MatchesNaiveLoopBothAlignments) {
  for (bool align : {true, false}) {
    for (DType dtype : {F32, F64}) {
      Tensor input = random_tensor({2, 3, 5, 7}, dtype, 31);
      Tensor grid = random_tensor({2, 4, 6, 2}, dtype, 32, -1.3, 1.3);  // some points outside [-1, 1]
      Tensor y = grid_sample(input, grid, align);
      expect_close(y, {2, 3, 4, 6}, naive_grid_sample(input, grid, align), dtype == F64 ? 1e-12 : 1e-5,
                   std::string("align_corners = ") + (align ? "true" : "false"));
    }
  }
}

TEST(SpatialGridSample, IntegerPointsGatherPixels) {
  // Pixel (i, j) sits at x = -1 + 2j/(W-1) with align_corners, at x = (2j+1)/W - 1 without.
  const int64_t H = 3, W = 4;
  Tensor input = random_tensor({1, 2, H, W}, F64, 41);
  const std::vector<double> in = values(input);
  const std::vector<std::pair<int64_t, int64_t>> pixels = {{0, 0}, {2, 3}, {1, 2}, {0, 3}, {2, 0}};
  for (bool align : {true, false}) {
    std::vector<double> g, expected(2 * pixels.size());
    for (size_t n = 0; n < pixels.size(); ++n) {
      auto [i, j] = pixels[n];
      g.push_back(align ? -1.0 + 2.0 * j / (W - 1) : (2.0 * j + 1) / W - 1);
      g.push_back(align ? -1.0 + 2.0 * i / (H - 1) : (2.0 * i + 1) / H - 1);
      for (int64_t c = 0; c < 2; ++c) expected[c * pixels.size() + n] = in[(c * H + i) * W + j];
    }
    Tensor grid = ops::from_vector(g, {1, 1, static_cast<int64_t>(pixels.size()), 2});
    expect_close(grid_sample(input, grid, align), {1, 2, 1, static_cast<int64_t>(pixels.size())}, expected, 1e-12,
                 align ? "align_corners" : "no align_corners");
  }
}

TEST(SpatialGridSample, HalfIntegersAverageTheNeighbours) {
  // align_corners = true on a 3x3 map: x = 0 is column 1, x = 0.5 is column 1.5, y = -0.5 is row 0.5.
  Tensor input = ops::from_vector<double>({1, 2, 3,  //
                                           4, 5, 6,  //
                                           7, 8, 9},
                                          {1, 1, 3, 3});
  Tensor grid = ops::from_vector<double>({0.5, 0.0,    // (row 1, col 1.5): (5 + 6) / 2
                                          0.0, -0.5,   // (row 0.5, col 1): (2 + 5) / 2
                                          -0.5, 0.5},  // (row 1.5, col 0.5): (4 + 5 + 7 + 8) / 4
                                         {1, 1, 3, 2});
  expect_close(grid_sample(input, grid, true), {1, 1, 1, 3}, {5.5, 3.5, 6.0}, 1e-12, "half-integers");
}

TEST(SpatialGridSample, ZeroOutsideAndAlignCornersAtTheEdge) {
  Tensor input = ops::from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2});
  // Far outside: every neighbour is padding.
  Tensor far = ops::from_vector<double>({3.0, 0.0, 0.0, -5.0}, {1, 1, 2, 2});
  expect_close(grid_sample(input, far, false), {1, 1, 1, 2}, {0, 0}, 0, "far outside");
  // The corner (-1, -1): the centre of pixel (0, 0) with align_corners, its outer corner without, where
  // (row -0.5, col -0.5) takes a quarter of pixel (0, 0) and three quarters of padding.
  Tensor corner = ops::from_vector<double>({-1.0, -1.0}, {1, 1, 1, 2});
  expect_close(grid_sample(input, corner, true), {1, 1, 1, 1}, {1.0}, 1e-12, "align_corners corner");
  expect_close(grid_sample(input, corner, false), {1, 1, 1, 1}, {0.25}, 1e-12, "no align_corners corner");
  // The right edge (x = 1, y = 0) without align_corners: column 1.5, row 0.5: half of (2 + 4) / 2.
  Tensor edge = ops::from_vector<double>({1.0, 0.0}, {1, 1, 1, 2});
  expect_close(grid_sample(input, edge, false), {1, 1, 1, 1}, {1.5}, 1e-12, "right edge");
}

TEST(SpatialGridSample, GradcheckInputAndGrid) {
  for (bool align : {true, false}) {
    // Positions in [-1.2, 1.2]: some neighbours fall in the padding. Random reals are almost surely
    // not within eps of an integer pixel position, where the derivative in the grid jumps.
    Inputs in{leaf(random_tensor({2, 2, 3, 4}, F64, 51)), leaf(random_tensor({2, 2, 3, 2}, F64, 52, -1.2, 1.2))};
    auto f = [align](const Inputs& v) { return grid_sample(v[0], v[1], align); };
    autograd::GradcheckResult r = autograd::gradcheck(f, in);
    EXPECT_TRUE(r.ok) << "align_corners = " << align << ": " << r.message;
  }
}

TEST(SpatialBilinearSamplePoints, HandValuesAndZeroOutside) {
  // map [2, 3, 2]: channel 0 holds 10*y + x, channel 1 holds -1 everywhere.
  std::vector<double> m;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) m.insert(m.end(), {10.0 * y + x, -1.0});
  Tensor map = ops::from_vector(m, {2, 3, 2});
  Tensor points = ops::from_vector<double>({1, 2,       // an integer point reads the pixel
                                            0.5, 1.5,   // inside: the plane 10y + x is reproduced exactly
                                            -0.5, 0,    // half a pixel above the map: half of pixel (0, 0)
                                            5, 5},      // outside: 0
                                           {4, 2});
  expect_close(bilinear_sample_points(map, points), {4, 2}, {12, -1, 6.5, -1, 0, -0.5, 0, 0}, 1e-12, "points");
}

TEST(SpatialBilinearSamplePoints, AgreesWithGridSampleAlignCorners) {
  // (y, x) in pixels is grid_sample's align_corners = true mapping of (x, y) = 2 * pixel / (size - 1) - 1.
  const int64_t H = 4, W = 5, C = 3, P = 7;
  Tensor map = random_tensor({H, W, C}, F64, 61);
  // Points from a little before the first pixel to a little past the last: [P, 2] * [2] (the extent).
  Tensor points = random_tensor({P, 2}, F64, 62, -0.1, 1.1) * ops::from_vector<double>({H - 1.0, W - 1.0});
  std::vector<double> pv = values(points), g;
  for (int64_t p = 0; p < P; ++p) {
    g.push_back(2 * pv[2 * p + 1] / (W - 1) - 1);
    g.push_back(2 * pv[2 * p + 0] / (H - 1) - 1);
  }
  Tensor input = ops::unsqueeze(ops::permute(map, {2, 0, 1}), 0);  // [1, C, H, W]
  Tensor via_grid = ops::permute(ops::reshape(grid_sample(input, ops::from_vector(g, {1, 1, P, 2}), true), {C, P}), {1, 0});
  expect_close(bilinear_sample_points(map, points), {P, C}, values(via_grid), 1e-12, "vs grid_sample");
}

TEST(SpatialBilinearSamplePoints, GradcheckMapAndPoints) {
  Inputs in{leaf(random_tensor({3, 4, 2}, F64, 71)), leaf(random_tensor({6, 2}, F64, 72, -1.5, 4.5))};
  auto f = [](const Inputs& v) { return bilinear_sample_points(v[0], v[1]); };
  EXPECT_GRADCHECK(f, in);
}

// ---------------------------------------------------------------- errors name the op and the shapes

TEST(SpatialErrors, Conv3d) {
  Tensor x = ops::zeros({1, 4, 3, 5, 5});
  Tensor w = ops::zeros({6, 2, 3, 3, 3});
  EXPECT_TRUE(Contains(error_of([&] { conv3d(ops::zeros({4, 3, 5, 5}), w, Tensor()); }),
                       "conv3d: expected x [B, C, T, H, W], got [4, 3, 5, 5]"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, ops::zeros({6, 2, 3, 3}), Tensor()); }),
                       "conv3d: expected weight [C_out, C/groups, kt, kh, kw], got [6, 2, 3, 3]"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, w, Tensor(), {{1, 1, 1}, {0, 0, 0}, 3}); }),
                       "conv3d: channels of x [1, 4, 3, 5, 5] and of weight [6, 2, 3, 3, 3] must both be divisible by groups = 3"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, w, Tensor()); }),
                       "conv3d: weight [6, 2, 3, 3, 3] has 2 input channels per group, but x [1, 4, 3, 5, 5] with groups = 1 has 4"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, w, ops::zeros({5}), {{1, 1, 1}, {0, 0, 0}, 2}); }),
                       "conv3d: bias must be [C_out] = [6], got [5]"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, ops::zeros({6, 2, 4, 3, 3}), Tensor(), {{1, 1, 1}, {0, 0, 0}, 2}); }),
                       "conv3d: kernel (4, 3, 3) is larger than the padded input (x [1, 4, 3, 5, 5] with padding (0, 0, 0))"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, w, Tensor(), {{0, 1, 1}, {0, 0, 0}, 2}); }), "conv3d: kernel (3, 3, 3) and stride (0, 1, 1) must be positive"));
  EXPECT_TRUE(Contains(error_of([&] { conv3d(x, ops::zeros({6, 2, 3, 3, 3}, F64), Tensor(), {{1, 1, 1}, {0, 0, 0}, 2}); }),
                       "conv3d: x is float32 but weight is float64"));
  // With padding 1 along t the same kernel fits.
  EXPECT_NO_THROW(conv3d(x, ops::zeros({6, 2, 4, 3, 3}), Tensor(), {{1, 1, 1}, {1, 0, 0}, 2}));
  EXPECT_TRUE(Contains(error_of([&] { unfold3d(x, {1, 1, 8}, {1, 1, 1}, {0, 0, 1}); }),
                       "unfold3d: kernel (1, 1, 8) is larger than the padded input (x [1, 4, 3, 5, 5] with padding (0, 0, 1))"));
}

TEST(SpatialErrors, Pool3d) {
  Tensor x = ops::zeros({1, 2, 3, 4, 4});
  EXPECT_TRUE(Contains(error_of([&] { max_pool3d(ops::zeros({2, 3, 4, 4}), {2, 2, 2}, {2, 2, 2}); }),
                       "max_pool3d: expected x [B, C, T, H, W], got [2, 3, 4, 4]"));
  EXPECT_TRUE(Contains(error_of([&] { avg_pool3d(x, {4, 2, 2}, {1, 1, 1}); }),
                       "avg_pool3d: kernel (4, 2, 2) is larger than the padded input (x [1, 2, 3, 4, 4] with padding (0, 0, 0))"));
  EXPECT_TRUE(Contains(error_of([&] { max_pool3d(x, {2, 2, 2}, {1, 1, 1}, {1, 2, 1}); }),
                       "max_pool3d: padding (1, 2, 1) must be between 0 and half the kernel (2, 2, 2) (x [1, 2, 3, 4, 4])"));
  EXPECT_TRUE(Contains(error_of([&] { avg_pool3d(x, {2, 2, 2}, {1, 0, 1}); }), "avg_pool3d: kernel (2, 2, 2) and stride (1, 0, 1)"));
}

TEST(SpatialErrors, GridSampleAndPoints) {
  Tensor input = ops::zeros({2, 3, 4, 5});
  EXPECT_TRUE(Contains(error_of([&] { grid_sample(ops::zeros({3, 4, 5}), ops::zeros({2, 1, 1, 2}), true); }),
                       "grid_sample: expected input [B, C, H, W] with H, W >= 1, got [3, 4, 5]"));
  EXPECT_TRUE(Contains(error_of([&] { grid_sample(input, ops::zeros({2, 1, 1, 3}), true); }),
                       "grid_sample: expected grid [B, Ho, Wo, 2] with B = 2 (input [2, 3, 4, 5]), got [2, 1, 1, 3]"));
  EXPECT_TRUE(Contains(error_of([&] { grid_sample(input, ops::zeros({1, 1, 1, 2}), false); }),
                       "grid_sample: expected grid [B, Ho, Wo, 2] with B = 2 (input [2, 3, 4, 5]), got [1, 1, 1, 2]"));
  EXPECT_TRUE(Contains(error_of([&] { grid_sample(input, ops::zeros({2, 1, 1, 2}, F64), false); }),
                       "grid_sample: input (float32 on cpu) and grid (float64 on cpu) must have the same dtype and device"));
  Tensor nan_grid = ops::full({2, 1, 1, 2}, std::nan(""));
  EXPECT_TRUE(Contains(error_of([&] { grid_sample(input, nan_grid, true); }), "grid_sample: sampling position 0 is not finite"));
  EXPECT_TRUE(Contains(error_of([&] { bilinear_sample_points(ops::zeros({4, 5}), ops::zeros({3, 2})); }),
                       "bilinear_sample_points: expected map [H, W, C] with H, W >= 1, got [4, 5]"));
  EXPECT_TRUE(Contains(error_of([&] { bilinear_sample_points(ops::zeros({4, 5, 2}), ops::zeros({3, 3})); }),
                       "bilinear_sample_points: expected points [P, 2] as (y, x), got [3, 3]"));
}
