// The "dilated" design (nn/attention/dilated.h). What is checked, and against what:
//   - torchscale's head -> offset rule on hand-worked cases (heads padded to a multiple of r);
//   - one branch (w = n, r = 1), and two identical such branches, are exactly the "joint" design;
//   - a general mixture (partial last segments, r > 1, heads padded, rows no branch chooses) equals ONE
//     softmax over the multiset union of each query's branch keys with a log(multiplicity) bias, written
//     out here in float64, on dense and RLT-like batches;
//   - packed == each clip alone (dense, RLT-like);
//   - gradients: with detach_weights = 0 a float64 gradcheck of the whole layer; with detach_weights = 1
//     the gradient is that of the mixture with alpha frozen at its value (gradcheck of that frozen
//     mixture, then equal analytic gradients), and it differs from the undetached one;
//   - bad options and shapes are named in the error.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "attention_testing.h"
#include "autograd/gradcheck.h"
#include "nn/attention/dilated.h"
#include "nn/attention/registry.h"
#include "nn/transformer.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::as_doubles;
using glance::testing::expect_all_close;
using glance::testing::rlt_like_layout;

void parameters_to_float64(Module& m) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor c = ops::contiguous(ops::to_dtype(p, DType::Float64));
    TensorImpl& impl = p.impl();
    impl.storage = c.storage(), impl.strides = c.strides(), impl.offset = c.offset(), impl.dtype = DType::Float64;
    impl.grad.reset();
  }
}

TokenLayout clip_alone(const TokenLayout& layout, int64_t b) {
  const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
  return TokenLayout({n}, ops::narrow(layout.t(), 0, begin, n), ops::narrow(layout.h(), 0, begin, n),
                     ops::narrow(layout.w(), 0, begin, n), ops::narrow(layout.length(), 0, begin, n), layout.grid());
}

std::shared_ptr<AttentionLayer> dilated(int64_t dim, int64_t heads, std::map<std::string, double> options,
                                        uint64_t seed = 3) {
  AttentionConfig c;
  c.dim = dim, c.heads = heads, c.options = std::move(options);
  manual_seed(seed);
  return make_attention("dilated", c);
}

// The brute force: for each head h and query p of a clip, the keys of every branch that chooses p for h,
// gathered as a multiset; one softmax over the distinct keys with +log(multiplicity) on the logits.
std::vector<double> one_softmax_over_branch_keys(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const TokenLayout& layout, const std::vector<DilatedBranch>& branches,
                                                 double scale) {
  const int64_t H = q.size(0), N = q.size(1), d = q.size(2);
  const std::vector<double> Q = as_doubles(q), K = as_doubles(k), V = as_doubles(v);
  std::vector<double> out(static_cast<size_t>(H * N * d), 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
      for (int64_t p = 0; p < n; ++p) {
        std::map<int64_t, int> multiplicity;  // key token -> how many branches give it to this query
        for (const DilatedBranch& br : branches) {
          const int64_t sl = std::min(br.segment, n), start = p / sl * sl, length = std::min(sl, n - start);
          const int64_t padded_heads = (H + br.rate - 1) / br.rate * br.rate;
          const int64_t offset = h / (padded_heads / br.rate);
          if ((p - start) % br.rate != offset) continue;  // this branch does not choose p for head h
          for (int64_t u = offset; u < length; u += br.rate) ++multiplicity[begin + start + u];
        }
        if (multiplicity.empty()) continue;  // chosen by no branch: 0
        const int64_t i = begin + p;
        std::map<int64_t, double> logit;
        double top = -INFINITY, z = 0;
        for (auto [j, count] : multiplicity) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += Q[(h * N + i) * d + c] * K[(h * N + j) * d + c];
          logit[j] = dot * scale + std::log(double(count));
          top = std::max(top, logit[j]);
        }
        for (auto [j, s] : logit) z += std::exp(s - top);
        for (auto [j, s] : logit)
          for (int64_t c = 0; c < d; ++c) out[(h * N + i) * d + c] += std::exp(s - top) / z * V[(h * N + j) * d + c];
      }
    }
  return out;
}

TEST(VariantDilated, HeadOffsetsFollowTorchscale) {
  auto offsets = [](int64_t heads, int64_t rate) {
    std::vector<int64_t> o;
    for (int64_t j = 0; j < heads; ++j) o.push_back(dilated_head_offset(j, heads, rate));
    return o;
  };
  EXPECT_EQ(offsets(4, 2), (std::vector<int64_t>{0, 0, 1, 1}));        // contiguous groups, not j mod r
  EXPECT_EQ(offsets(3, 2), (std::vector<int64_t>{0, 0, 1}));           // H' = 4
  EXPECT_EQ(offsets(6, 4), (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));  // H' = 8: offset 3 has no head
  EXPECT_EQ(offsets(3, 4), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(offsets(4, 1), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(dilated_head_offset(11, 12, 16), 11);  // the reference's example: offsets 12..15 uncovered
  EXPECT_THROW(dilated_head_offset(4, 4, 2), std::invalid_argument);
}

void expect_equals_joint(std::map<std::string, double> options, const std::string& what) {
  auto layer = dilated(16, 4, std::move(options));
  AttentionConfig c;
  c.dim = 16, c.heads = 4;
  auto joint = make_attention("joint", c);
  joint->load_state_dict(layer->state_dict());  // the same qkv and proj
  Generator gen(4);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{2, 3, 3}), rlt_like_layout(3, Grid{4, 3, 3}, 0.5, 2)}) {
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    expect_all_close(as_doubles(layer->forward(x, layout)), as_doubles(joint->forward(x, layout)), 1e-5, what);
  }
}

TEST(VariantDilated, OneFullBranchEqualsJointAttention) {
  expect_equals_joint({{"branches", 1}, {"w0", 1000}, {"r0", 1}}, "one branch (n, 1)");
}

TEST(VariantDilated, TwoIdenticalBranchesEqualJointAttention) {
  expect_equals_joint({{"branches", 2}, {"w0", 1000}, {"r0", 1}, {"w1", 1000}, {"r1", 1}}, "two branches (n, 1)");
}

TEST(VariantDilated, MixtureEqualsOneSoftmaxOverTheMultisetOfBranchKeys) {
  const int64_t H = 3, d = 4;
  // Partial last segments (18 = 4+4+4+4+2), dilation with padded heads (H' = 4 for r = 2, 4), a segment
  // longer than some clips (clamped), r > H; the second set leaves some (row, head) pairs unchosen.
  const std::vector<std::vector<DilatedBranch>> sets = {{{4, 1}, {6, 2}, {20, 3}, {5, 4}}, {{3, 2}, {7, 2}}};
  Generator gen(8);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{2, 3, 3}), rlt_like_layout(3, Grid{4, 3, 3}, 0.4, 9)}) {
    const int64_t N = layout.total_tokens();
    Tensor q = ops::randn({H, N, d}, DType::Float64, &gen), k = ops::randn({H, N, d}, DType::Float64, &gen);
    Tensor v = ops::randn({H, N, d}, DType::Float64, &gen);
    for (size_t s = 0; s < sets.size(); ++s) {
      const auto expected = one_softmax_over_branch_keys(q, k, v, layout, sets[s], 0.6);
      for (bool detach : {true, false}) {
        const Tensor got = dilated_attention(q, k, v, layout, sets[s], 0.6, detach);
        expect_all_close(as_doubles(got), expected, 1e-12, "set " + std::to_string(s) + (detach ? ", detached" : ""));
      }
    }
  }
  // The second set with H = 1: odd rows of every segment are chosen by no branch and get 0.
  const TokenLayout layout = TokenLayout::from_counts({6});
  Tensor q = ops::randn({1, 6, d}, DType::Float64, &gen), k = ops::randn({1, 6, d}, DType::Float64, &gen);
  Tensor v = ops::randn({1, 6, d}, DType::Float64, &gen);
  const std::vector<double> got =
      as_doubles(dilated_attention(q, k, v, layout, sets[1], 0.6, true));
  for (int64_t c = 0; c < d; ++c) EXPECT_EQ(got[1 * d + c], 0.0) << "row 1 is chosen by no branch";
  EXPECT_NE(got[0], 0.0);
}

TEST(VariantDilated, PackedEqualsEachClipAlone) {
  auto layer = dilated(16, 4, {{"w0", 4}, {"r0", 1}, {"w1", 8}, {"r1", 2}, {"w2", 64}, {"r2", 4}});
  Generator gen(12);
  for (const TokenLayout& layout : {TokenLayout::dense(2, Grid{2, 3, 4}), rlt_like_layout(4, Grid{4, 3, 3}, 0.3, 5)}) {
    Tensor x = ops::randn({layout.total_tokens(), 16}, DType::Float32, &gen);
    const std::vector<double> packed = as_doubles(layer->forward(x, layout));
    for (int64_t b = 0; b < layout.batch_size(); ++b) {
      const int64_t begin = layout.clip_begin(b), n = layout.clip_tokens(b);
      const std::vector<double> alone = as_doubles(layer->forward(ops::narrow(x, 0, begin, n), clip_alone(layout, b)));
      expect_all_close(std::vector<double>(packed.begin() + begin * 16, packed.begin() + (begin + n) * 16), alone,
                       1e-5, "clip " + std::to_string(b) + " of " + std::to_string(n) + " tokens");
    }
  }
}

TEST(VariantDilated, GradcheckOfTheLayerWithGradientThroughTheWeights) {
  auto layer = dilated(6, 2, {{"branches", 2}, {"w0", 3}, {"r0", 1}, {"w1", 5}, {"r1", 2}, {"detach_weights", 0}});
  parameters_to_float64(*layer);
  const TokenLayout layout = TokenLayout::from_counts({7, 4});
  Generator gen(31);
  std::vector<Tensor> inputs{ops::randn({11, 6}, DType::Float64, &gen).set_requires_grad(true)};
  for (auto& [name, p] : layer->named_parameters()) inputs.push_back(p);
  auto result = autograd::gradcheck([&](const std::vector<Tensor>& in) { return layer->forward(in[0], layout); },
                                    inputs);
  EXPECT_TRUE(result.ok) << result.message;
  for (auto& [name, p] : layer->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    double norm = 0;
    for (double g : as_doubles(p.grad())) norm += g * g;
    EXPECT_TRUE(std::isfinite(norm) && norm > 0) << name << " gets no gradient";
  }
}

// With detach_weights = 1 (torchscale) the gradient is not that of the forward function (alpha depends on
// q and k but is treated as a constant), so a plain gradcheck must fail. What it must be: the gradient of
// the "frozen" mixture g(q, k, v) = sum_i alpha_i(q0, k0) O_i(q, k, v) at (q0, k0, v0). Checked in two
// steps: gradcheck g itself (alpha0 computed here from the branch lse), then compare autograd's gradient
// of the detached design with autograd's gradient of g.
TEST(VariantDilated, DetachedWeightsGiveTheGradientOfTheFrozenMixture) {
  const TokenLayout layout = TokenLayout::from_counts({7, 5});
  const int64_t H = 2, d = 3, N = layout.total_tokens();
  const std::vector<DilatedBranch> branches = {{3, 1}, {7, 2}};
  Generator gen(17);
  std::vector<Tensor> qkv;
  for (int i = 0; i < 3; ++i) qkv.push_back(ops::randn({H, N, d}, DType::Float64, &gen).set_requires_grad(true));

  // alpha0 [branches, H, N] by hand from the branch lse at the point (absent lse -> weight 0).
  std::vector<std::vector<double>> lse;
  for (const DilatedBranch& br : branches)
    lse.push_back(as_doubles(dilated_branch(qkv[0], qkv[1], qkv[2], layout, br, 0.5, false).lse));
  std::vector<double> alpha0(branches.size() * H * N);
  for (int64_t j = 0; j < H * N; ++j) {
    double top = -INFINITY, z = 0;
    for (auto& l : lse) top = std::max(top, l[j]);
    for (auto& l : lse) z += std::exp(l[j] - top);
    for (size_t i = 0; i < branches.size(); ++i) alpha0[i * H * N + j] = std::exp(lse[i][j] - top) / z;
  }
  const Tensor alpha = ops::from_vector(alpha0, {int64_t(branches.size()), H, N, 1});
  auto frozen = [&](const std::vector<Tensor>& x) {
    Tensor out;
    for (size_t i = 0; i < branches.size(); ++i) {
      Tensor term = dilated_branch(x[0], x[1], x[2], layout, branches[i], 0.5, false).out *
                    ops::select(alpha, 0, int64_t(i));
      out = i == 0 ? term : out + term;
    }
    return out;
  };
  auto result = autograd::gradcheck(frozen, qkv);
  ASSERT_TRUE(result.ok) << result.message;

  const Tensor w = ops::randn({H, N, d}, DType::Float64, &gen);
  auto gradients = [&](const std::function<Tensor(const std::vector<Tensor>&)>& f) {
    for (auto& t : qkv) t.zero_grad();
    sum(f(qkv) * w).backward();
    std::vector<double> all;
    for (auto& t : qkv) {
      auto g = as_doubles(t.grad());
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  auto design = [&](bool detach) {
    return [&, detach](const std::vector<Tensor>& x) {
      return dilated_attention(x[0], x[1], x[2], layout, branches, 0.5, detach);
    };
  };
  expect_all_close(as_doubles(design(true)(qkv)), as_doubles(design(false)(qkv)), 1e-14, "forward");
  const auto detached = gradients(design(true)), frozen_grad = gradients(frozen), full = gradients(design(false));
  expect_all_close(detached, frozen_grad, 1e-12, "detached design vs frozen mixture");
  double differ = 0;
  for (size_t i = 0; i < full.size(); ++i) differ = std::max(differ, std::abs(full[i] - detached[i]));
  EXPECT_GT(differ, 1e-6) << "the gradient through alpha should matter";

  // The registered layer with the default detach_weights = 1: finite, non-zero gradients everywhere.
  auto layer = dilated(6, 2, {{"w0", 3}, {"w1", 4}, {"w2", 8}});
  Tensor x = ops::randn({N, 6}, DType::Float32, &gen);
  sum(layer->forward(x, layout) * ops::randn({N, 6}, DType::Float32, &gen)).backward();
  for (auto& [name, p] : layer->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    double norm = 0;
    for (double g : as_doubles(p.grad())) norm += g * g;
    EXPECT_TRUE(std::isfinite(norm) && norm > 0) << name;
  }
}

TEST(VariantDilated, BadOptionsAndShapesAreNamed) {
  auto message = [](std::map<std::string, double> options) -> std::string {
    try {
      dilated(8, 2, std::move(options));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_NE(message({{"r1", 0}}).find("'r1'"), std::string::npos);
  EXPECT_NE(message({{"w0", 2.5}}).find("'w0'"), std::string::npos);
  EXPECT_NE(message({{"branches", 0}}).find("'branches'"), std::string::npos);
  EXPECT_NE(message({{"w3", 64}}).find("unknown option 'w3'"), std::string::npos);  // only 3 branches
  EXPECT_EQ(message({{"branches", 4}, {"w3", 64}, {"r3", 3}}), "no exception");
  EXPECT_NE(message({{"detach_weights", 2}}).find("detach_weights"), std::string::npos);
  auto layer = dilated(8, 2, {});
  try {
    layer->forward(ops::zeros({5, 8}), TokenLayout::from_counts({2, 2}));
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 8]"), std::string::npos) << e.what();
  }
}

TEST(VariantDilated, TrainsInsideATransformerBlockWithItsDefaults) {
  // The tiny model's clip grid with the design's default options (tests/nn/attention_testing.h).
  glance::testing::expect_block_trains_with_defaults("dilated");
}

}  // namespace
