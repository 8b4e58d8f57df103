// Losses against float64 hand computations; SGD and AdamW steps against updates written out from their
// formulas (float64 parameters, set gradients); parameter groups; schedules; gradient clipping;
// gradient accumulation; and a tiny model that must overfit a small batch.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "nn/expect_throw.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/optim/adamw.h"
#include "nn/optim/optimizer.h"
#include "nn/optim/schedule.h"
#include "nn/optim/sgd.h"
#include "tensor/random.h"

namespace {

using namespace glance;
using namespace glance::nn;
using glance::testing::expect_throw_containing;

Tensor param(const std::vector<double>& values) {
  Tensor p = ops::from_vector<double>(values);
  p.set_requires_grad(true);
  return p;
}

void set_grad(Tensor& p, const std::vector<double>& g) { p.set_grad(ops::from_vector<double>(g)); }

void expect_values(const Tensor& t, const std::vector<double>& expected, double tol, const std::string& what) {
  std::vector<double> got = ops::to_dtype(t, DType::Float64).to_vector<double>();
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << what << " [" << i << "]";
}

// ---------------------------------------------------------------- losses

struct CeCase {
  std::vector<double> logits;  // [3, 4]
  std::vector<int64_t> labels;
};
const CeCase kCe{{1.0, 2.0, 0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 3.0, -2.0, 1.5, 0.25}, {1, 3, 0}};

// Per-row loss: -(1-eps) log p[y] - eps * mean_c log p[c].
std::vector<double> ce_by_hand(const CeCase& c, double eps) {
  std::vector<double> out;
  for (size_t r = 0; r < c.labels.size(); ++r) {
    const double* x = &c.logits[r * 4];
    double m = std::max(std::max(x[0], x[1]), std::max(x[2], x[3]));
    double z = 0;
    for (int j = 0; j < 4; ++j) z += std::exp(x[j] - m);
    double lse = m + std::log(z), mean_logp = 0;
    for (int j = 0; j < 4; ++j) mean_logp += (x[j] - lse) / 4.0;
    out.push_back(-(1 - eps) * (x[c.labels[r]] - lse) - eps * mean_logp);
  }
  return out;
}

TEST(CrossEntropy, MatchesAFloat64HandComputation) {
  Tensor logits = ops::to_dtype(ops::from_vector<double>(kCe.logits, {3, 4}), DType::Float32);
  Tensor labels = ops::from_vector<int64_t>(kCe.labels);
  for (double eps : {0.0, 0.1}) {
    std::vector<double> rows = ce_by_hand(kCe, eps);
    double total = rows[0] + rows[1] + rows[2];
    std::string what = "label_smoothing " + std::to_string(eps);
    EXPECT_NEAR(cross_entropy(logits, labels, eps).item(), total / 3, 1e-6) << what;
    EXPECT_NEAR(cross_entropy(logits, labels, eps, Reduction::Sum).item(), total, 1e-5) << what;
    Tensor none = cross_entropy(logits, labels, eps, Reduction::None);
    EXPECT_EQ(none.shape(), (Shape{3})) << what;
    expect_values(none, rows, 1e-6, what);
    // int32 labels are the same labels.
    EXPECT_NEAR(cross_entropy(logits, ops::to_dtype(labels, DType::Int32), eps).item(), total / 3, 1e-6) << what;
  }
  // Row 1 has equal logits: its loss is log(4) whatever the label.
  EXPECT_NEAR(cross_entropy(logits, labels, 0.0, Reduction::None).to_vector<float>()[1], std::log(4.0), 1e-6);
}

TEST(CrossEntropy, GradientIsSoftmaxMinusTheSmoothedTargetOverN) {
  for (double eps : {0.0, 0.1}) {
    Tensor logits = ops::to_dtype(ops::from_vector<double>(kCe.logits, {3, 4}), DType::Float32);
    logits.set_requires_grad(true);
    cross_entropy(logits, ops::from_vector<int64_t>(kCe.labels), eps).backward();
    std::vector<double> expected;
    for (int r = 0; r < 3; ++r) {
      const double* x = &kCe.logits[r * 4];
      double z = 0;
      for (int j = 0; j < 4; ++j) z += std::exp(x[j]);
      for (int j = 0; j < 4; ++j) {
        double target = (1 - eps) * (j == kCe.labels[r]) + eps / 4;
        expected.push_back((std::exp(x[j]) / z - target) / 3);
      }
    }
    expect_values(logits.grad(), expected, 1e-6, "eps " + std::to_string(eps));
  }
}

TEST(CrossEntropy, RejectsBadLabelsNamingThem) {
  Tensor logits = ops::zeros({3, 4});
  expect_throw_containing([&] { cross_entropy(logits, ops::from_vector<int64_t>({0, 4, 1})); }, {"label 4"});
  expect_throw_containing([&] { cross_entropy(logits, ops::from_vector<int64_t>({0, -1, 1})); }, {"label -1"});
  EXPECT_THROW(cross_entropy(logits, ops::from_vector<int64_t>({0, 1})), std::invalid_argument);
  EXPECT_THROW(cross_entropy(ops::zeros({3}), ops::from_vector<int64_t>({0, 1, 2})), std::invalid_argument);
  EXPECT_THROW(cross_entropy(logits, ops::from_vector<int64_t>({0, 1, 2}), 1.5), std::invalid_argument);
}

TEST(MseLoss, MeanSumAndNone) {
  Tensor pred = ops::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor target = ops::from_vector<float>({1, 0, 3, 1, 5, 10}, {2, 3});
  // squared differences: 0, 4, 0, 9, 0, 16
  EXPECT_NEAR(mse_loss(pred, target).item(), 29.0 / 6.0, 1e-6);
  EXPECT_NEAR(mse_loss(pred, target, Reduction::Sum).item(), 29.0, 1e-5);
  Tensor none = mse_loss(pred, target, Reduction::None);
  EXPECT_EQ(none.shape(), (Shape{2, 3}));
  EXPECT_EQ(none.to_vector<float>(), (std::vector<float>{0, 4, 0, 9, 0, 16}));
  EXPECT_THROW(mse_loss(pred, ops::zeros({3, 2})), std::invalid_argument);
  // d mean / d pred = 2 (pred - target) / n
  pred.set_requires_grad(true);
  mse_loss(pred, target).backward();
  expect_values(pred.grad(), {0, 4.0 / 6, 0, 6.0 / 6, 0, -8.0 / 6}, 1e-6, "mse grad");
}

TEST(Accuracy, FractionOfRowsWhoseArgmaxIsTheLabel) {
  Tensor logits = ops::from_vector<float>({0.1f, 0.9f, 0.0f, 2.0f, 1.0f, 0.0f, 0.0f, 0.0f, 5.0f, 1.0f, 3.0f, 2.0f}, {4, 3});
  // argmaxes: 1, 0, 2, 1
  EXPECT_DOUBLE_EQ(accuracy(logits, ops::from_vector<int64_t>({1, 0, 2, 1})), 1.0);
  EXPECT_DOUBLE_EQ(accuracy(logits, ops::from_vector<int64_t>({1, 0, 1, 1})), 0.75);
  EXPECT_DOUBLE_EQ(accuracy(logits, ops::from_vector<int32_t>({0, 1, 0, 0})), 0.0);
  EXPECT_DOUBLE_EQ(accuracy(ops::zeros({0, 3}), ops::zeros({0}, DType::Int64)), 0.0);
}

// One read for both numbers gives what loss.item() and accuracy() give separately.
TEST(Accuracy, ReadTogetherWithTheLossEqualsTheSeparateReads) {
  Tensor logits = ops::from_vector<float>({0.1f, 0.9f, 0.0f, 2.0f, 1.0f, 0.0f, 0.0f, 0.0f, 5.0f, 1.0f, 3.0f, 2.0f}, {4, 3});
  for (const Tensor& labels : {ops::from_vector<int64_t>({1, 0, 2, 1}), ops::from_vector<int64_t>({1, 0, 1, 1}),
                               ops::from_vector<int32_t>({0, 1, 0, 0})}) {
    const Tensor loss = cross_entropy(logits, labels, 0.1);
    const LossAndAccuracy r = read_loss_and_accuracy(loss, logits, labels);
    EXPECT_EQ(r.loss, loss.item());
    EXPECT_EQ(r.accuracy, accuracy(logits, labels));
  }
  // Labels shaped [N, 1] count as [N] (as accuracy() reads them), not broadcast against the predictions.
  const Tensor column = ops::from_vector<int64_t>({1, 0, 1, 1}, {4, 1});
  EXPECT_EQ(read_loss_and_accuracy(ops::scalar(1.0), logits, column).accuracy, 0.75);
  const LossAndAccuracy empty = read_loss_and_accuracy(ops::scalar(0.5), ops::zeros({0, 3}), ops::zeros({0}, DType::Int64));
  EXPECT_EQ(empty.loss, 0.5);
  EXPECT_EQ(empty.accuracy, 0.0);
  expect_throw_containing([&] { read_loss_and_accuracy(ops::zeros({2}), logits, ops::zeros({4}, DType::Int64)); },
                          {"scalar", "[2]"});
  expect_throw_containing([&] { read_loss_and_accuracy(ops::scalar(1.0), logits, ops::zeros({3}, DType::Int64)); },
                          {"[4, 3]", "[3]"});
}

// ---------------------------------------------------------------- SGD

TEST(SGD, PlainStep) {
  Tensor p = param({1.0, -2.0});
  SGD opt({ParamGroup{{p}, 0.1, 0.0, 1.0}});
  set_grad(p, {0.5, -0.25});
  opt.step();
  expect_values(p, {1.0 - 0.1 * 0.5, -2.0 + 0.1 * 0.25}, 1e-12, "step 1");
  set_grad(p, {1.0, 2.0});
  opt.step();
  expect_values(p, {0.95 - 0.1, -1.975 - 0.2}, 1e-12, "step 2");
  EXPECT_EQ(opt.steps(), 2);
}

TEST(SGD, MomentumTwoSteps) {
  const double lr = 0.1, mu = 0.9, p0 = 1.0, g1 = 0.5, g2 = -0.3;
  Tensor p = param({p0});
  SGD opt({ParamGroup{{p}, lr, 0.0, 1.0}}, SGDOptions{mu, 0.0, false});
  set_grad(p, {g1});
  opt.step();
  double buf = g1;  // the first step takes the gradient itself as the buffer
  double p1 = p0 - lr * buf;
  expect_values(p, {p1}, 1e-12, "step 1");
  set_grad(p, {g2});
  opt.step();
  buf = mu * buf + g2;
  double p2 = p1 - lr * buf;
  expect_values(p, {p2}, 1e-12, "step 2");
  EXPECT_NEAR(p2, 1.0 - 0.05 - 0.1 * (0.45 - 0.3), 1e-15);  // the same numbers written out
  expect_values(opt.state().at("0.0.momentum"), {buf}, 1e-12, "buffer");
}

TEST(SGD, DampeningAppliesFromTheSecondStep) {
  const double lr = 0.1, mu = 0.9, damp = 0.5, g1 = 2.0, g2 = 1.0;
  Tensor p = param({0.0});
  SGD opt({ParamGroup{{p}, lr, 0.0, 1.0}}, SGDOptions{mu, damp, false});
  set_grad(p, {g1});
  opt.step();
  set_grad(p, {g2});
  opt.step();
  double buf1 = g1, buf2 = mu * buf1 + (1 - damp) * g2;
  expect_values(p, {-lr * buf1 - lr * buf2}, 1e-12, "p");
}

TEST(SGD, NesterovTwoSteps) {
  const double lr = 0.05, mu = 0.8, p0 = -1.5, g1 = 0.4, g2 = 1.2;
  Tensor p = param({p0});
  SGD opt({ParamGroup{{p}, lr, 0.0, 1.0}}, SGDOptions{mu, 0.0, true});
  set_grad(p, {g1});
  opt.step();
  double buf = g1;
  double p1 = p0 - lr * (g1 + mu * buf);
  expect_values(p, {p1}, 1e-12, "step 1");
  set_grad(p, {g2});
  opt.step();
  buf = mu * buf + g2;
  double p2 = p1 - lr * (g2 + mu * buf);
  expect_values(p, {p2}, 1e-12, "step 2");
  EXPECT_THROW(SGD({ParamGroup{{param({0.0})}, 0.1, 0.0, 1.0}}, SGDOptions{0.0, 0.0, true}), std::invalid_argument);
}

TEST(SGD, WeightDecayWithMomentum) {
  const double lr = 0.1, mu = 0.9, wd = 0.01, p0 = 2.0, g1 = 0.3, g2 = -0.1;
  Tensor p = param({p0});
  SGD opt({ParamGroup{{p}, lr, wd, 1.0}}, SGDOptions{mu, 0.0, false});
  set_grad(p, {g1});
  opt.step();
  double d1 = g1 + wd * p0, buf = d1, p1 = p0 - lr * buf;
  expect_values(p, {p1}, 1e-12, "step 1");
  set_grad(p, {g2});
  opt.step();
  double d2 = g2 + wd * p1;
  buf = mu * buf + d2;
  expect_values(p, {p1 - lr * buf}, 1e-12, "step 2");
}

TEST(SGD, GroupsHaveTheirOwnRatesAndParametersWithoutGradientsStay) {
  Tensor a = param({1.0}), b = param({1.0}), c = param({1.0});
  SGD opt({ParamGroup{{a}, 0.1, 0.0, 1.0}, ParamGroup{{b, c}, 0.1, 0.5, 0.5}});
  opt.set_lr(0.2);  // group 0: 0.2, group 1: 0.2 * 0.5
  EXPECT_DOUBLE_EQ(opt.groups()[0].lr, 0.2);
  EXPECT_DOUBLE_EQ(opt.groups()[1].lr, 0.1);
  set_grad(a, {1.0});
  set_grad(b, {1.0});
  opt.step();
  expect_values(a, {1.0 - 0.2}, 1e-12, "a");
  expect_values(b, {1.0 - 0.1 * (1.0 + 0.5 * 1.0)}, 1e-12, "b");
  expect_values(c, {1.0}, 0, "c has no gradient: untouched");
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined() && a.grad().to_vector<double>()[0] != 0.0);
  // Only leaves that require grad can be optimised.
  EXPECT_THROW(SGD({ParamGroup{{ops::zeros({2})}, 0.1, 0.0, 1.0}}), std::invalid_argument);
  Tensor leaf = param({1.0});
  EXPECT_THROW(SGD({ParamGroup{{leaf * 2.0}, 0.1, 0.0, 1.0}}), std::invalid_argument);
}

// ---------------------------------------------------------------- AdamW

TEST(AdamW, ThreeStepsWithDecoupledDecayAndBiasCorrection) {
  const double lr = 0.1, wd = 0.2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const std::vector<double> grads = {0.5, -1.5, 0.25};
  Tensor p = param({1.0, -0.5});   // decayed group
  Tensor q = param({0.3});         // no-decay group
  AdamW opt({ParamGroup{{p}, lr, wd, 1.0}, ParamGroup{{q}, lr, 0.0, 1.0}}, AdamWOptions{b1, b2, eps});

  std::vector<double> pv = {1.0, -0.5}, pm = {0, 0}, pvv = {0, 0};
  double qv = 0.3, qm = 0, qvv = 0;
  for (int t = 1; t <= 3; ++t) {
    double g = grads[t - 1];
    std::vector<double> pg = {g, 2.0 * g};
    set_grad(p, pg);
    set_grad(q, {-g});
    opt.step();
    double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (int i = 0; i < 2; ++i) {
      pv[i] *= 1 - lr * wd;
      pm[i] = b1 * pm[i] + (1 - b1) * pg[i];
      pvv[i] = b2 * pvv[i] + (1 - b2) * pg[i] * pg[i];
      pv[i] -= lr * (pm[i] / c1) / (std::sqrt(pvv[i] / c2) + eps);
    }
    qm = b1 * qm + (1 - b1) * (-g);
    qvv = b2 * qvv + (1 - b2) * g * g;
    qv -= lr * (qm / c1) / (std::sqrt(qvv / c2) + eps);
    std::string what = "step " + std::to_string(t);
    expect_values(p, pv, 1e-12, what + " p");
    expect_values(q, {qv}, 1e-12, what + " q");
  }
  EXPECT_EQ(opt.steps(), 3);
  auto state = opt.state();
  EXPECT_EQ(state.size(), 4u);
  expect_values(state.at("0.0.exp_avg"), pm, 1e-12, "exp_avg");
  expect_values(state.at("0.0.exp_avg_sq"), pvv, 1e-12, "exp_avg_sq");
  expect_values(state.at("1.0.exp_avg"), {qm}, 1e-12, "q exp_avg");

  // The first step of Adam moves every coordinate by about lr (m/sqrt(v) = sign(g) after correction):
  Tensor r = param({0.0});
  AdamW fresh({ParamGroup{{r}, 0.01, 0.0, 1.0}});
  set_grad(r, {123.0});
  fresh.step();
  expect_values(r, {-0.01}, 1e-9, "first step");
}

TEST(AdamW, LoadStateRejectsMismatchesAndRestoresMoments) {
  Tensor p = param({1.0, 2.0});
  AdamW opt({ParamGroup{{p}, 0.1, 0.0, 1.0}});
  set_grad(p, {0.1, 0.2});
  opt.step();
  Tensor p2 = param({1.0, 2.0});
  AdamW other({ParamGroup{{p2}, 0.1, 0.0, 1.0}});
  std::map<std::string, Tensor> state;
  for (auto& [k, t] : opt.state()) state[k] = ops::clone(t);
  other.load_state(state, opt.steps());
  EXPECT_EQ(other.steps(), 1);
  EXPECT_EQ(other.state().at("0.0.exp_avg").to_vector<double>(), opt.state().at("0.0.exp_avg").to_vector<double>());
  auto bad = state;
  bad["0.0.exp_avg"] = ops::zeros({3}, DType::Float64);
  expect_throw_containing([&] { other.load_state(bad, 1); }, {"0.0.exp_avg"});
  bad = state;
  bad.erase("0.0.exp_avg_sq");
  EXPECT_THROW(other.load_state(bad, 1), std::invalid_argument);
}

// ---------------------------------------------------------------- groups, schedules, clipping

class TinyViTLike : public Module {
 public:
  TinyViTLike() {
    cls_token = register_parameter("cls_token", ops::zeros({1, 1, 8}));
    pos_embed = register_parameter("pos_embed", ops::zeros({1, 5, 8}));
    fc = register_module("fc", std::make_shared<Linear>(8, 8));
    norm = register_module("norm", std::make_shared<LayerNorm>(8));
    head = register_module("head", std::make_shared<Linear>(8, 3));
  }
  Tensor cls_token, pos_embed;
  std::shared_ptr<Linear> fc, head;
  std::shared_ptr<LayerNorm> norm;
};

TEST(DecayGroups, BiasesNormsPositionAndClassTokensAreNotDecayed) {
  TinyViTLike model;
  auto groups = decay_groups(model, 0.01, 0.05);
  ASSERT_EQ(groups.size(), 2u);
  auto contains = [](const ParamGroup& g, const Tensor& t) {
    for (const Tensor& p : g.params)
      if (p.same(t)) return true;
    return false;
  };
  const ParamGroup& decay = groups[0];
  const ParamGroup& no_decay = groups[1];
  EXPECT_DOUBLE_EQ(decay.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(no_decay.weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(decay.lr, 0.01);
  EXPECT_DOUBLE_EQ(no_decay.lr, 0.01);
  EXPECT_EQ(decay.params.size(), 2u);
  EXPECT_TRUE(contains(decay, model.fc->weight));
  EXPECT_TRUE(contains(decay, model.head->weight));
  EXPECT_EQ(no_decay.params.size(), 6u);
  for (const Tensor& t : {model.cls_token, model.pos_embed, model.fc->bias, model.norm->weight, model.norm->bias,
                          model.head->bias}) {
    EXPECT_TRUE(contains(no_decay, t));
  }
}

TEST(Schedules, WarmupCosineByHand) {
  const double base = 1.0, floor = 0.1;
  const int64_t total = 100, warmup = 10;
  // Warm-up: step s gives base * (s + 1) / warmup, so the first step already learns and step warmup-1 is base.
  EXPECT_NEAR(warmup_cosine_lr(0, total, warmup, base, floor), 0.1, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(4, total, warmup, base, floor), 0.5, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(9, total, warmup, base, floor), 1.0, 1e-12);
  // Cosine from base at step 10 to floor at step 100: halfway (step 55) is the midpoint.
  EXPECT_NEAR(warmup_cosine_lr(10, total, warmup, base, floor), 1.0, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(55, total, warmup, base, floor), 0.55, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(32, total, warmup, base, floor), 0.1 + 0.45 * (1 + std::cos(std::numbers::pi * 22 / 90)),
              1e-12);
  EXPECT_NEAR(warmup_cosine_lr(100, total, warmup, base, floor), 0.1, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(250, total, warmup, base, floor), 0.1, 1e-12);
  // Never above base, never below floor, decreasing after the warm-up.
  double previous = 2.0;
  for (int64_t s = 10; s <= 100; ++s) {
    double lr = warmup_cosine_lr(s, total, warmup, base, floor);
    EXPECT_LE(lr, previous + 1e-15);
    EXPECT_GE(lr, floor - 1e-15);
    previous = lr;
  }
  // No warm-up: starts at base.
  EXPECT_NEAR(warmup_cosine_lr(0, 50, 0, 0.3), 0.3, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(25, 50, 0, 0.3), 0.15, 1e-12);
  EXPECT_THROW(warmup_cosine_lr(0, 0, 0, 1.0), std::invalid_argument);
}

TEST(Schedules, StepLrByHand) {
  EXPECT_DOUBLE_EQ(step_lr(0, 30, 0.1, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(step_lr(29, 30, 0.1, 1.0), 1.0);
  EXPECT_NEAR(step_lr(30, 30, 0.1, 1.0), 0.1, 1e-15);
  EXPECT_NEAR(step_lr(65, 30, 0.1, 1.0), 0.01, 1e-15);
  EXPECT_NEAR(step_lr(7, 2, 0.5, 0.8), 0.1, 1e-15);
  EXPECT_THROW(step_lr(1, 0, 0.1, 1.0), std::invalid_argument);
}

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsThePreClipNorm) {
  Tensor a = ops::zeros({3}), b = ops::zeros({2}), c = ops::zeros({2});
  for (Tensor* t : {&a, &b, &c}) t->set_requires_grad(true);
  a.set_grad(ops::from_vector<float>({3, 4, 0}));
  b.set_grad(ops::from_vector<float>({0, 12}));
  // c has no gradient: ignored.  Global norm = sqrt(9 + 16 + 144) = 13.
  double norm = clip_grad_norm({a, b, c}, 6.5);
  EXPECT_NEAR(norm, 13.0, 1e-9);
  double scale = 6.5 / (13.0 + 1e-6);
  expect_values(a.grad(), {3 * scale, 4 * scale, 0}, 1e-6, "a");
  expect_values(b.grad(), {0, 12 * scale}, 1e-6, "b");
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 100.0), 6.5, 1e-5);  // below max: unchanged, returns the norm
  expect_values(b.grad(), {0, 12 * scale}, 1e-6, "b unchanged");
  EXPECT_FALSE(c.grad().defined());
}

// The device-side variant returns the norm as a float64 scalar tensor and leaves the gradients exactly as the
// host-read variant does (the same float64 norm, the same float32 scale), above and below the limit.
TEST(ClipGradNorm, OnDeviceVariantMatchesAndReturnsATensor) {
  for (double max_norm : {0.5, 6.5, 13.0, 100.0}) {
    Tensor a = ops::zeros({3}), b = ops::zeros({2});
    Tensor a2 = ops::zeros({3}), b2 = ops::zeros({2});
    for (Tensor* t : {&a, &b, &a2, &b2}) t->set_requires_grad(true);
    a.set_grad(ops::from_vector<float>({3, 4, 0})), a2.set_grad(ops::from_vector<float>({3, 4, 0}));
    b.set_grad(ops::from_vector<float>({0, 12})), b2.set_grad(ops::from_vector<float>({0, 12}));
    const Tensor norm = clip_grad_norm_on_device({a, b}, max_norm);
    ASSERT_EQ(norm.dtype(), DType::Float64);
    ASSERT_EQ(norm.dim(), 0);
    EXPECT_EQ(norm.item(), 13.0);
    EXPECT_EQ(clip_grad_norm({a2, b2}, max_norm), 13.0);
    const float scale = max_norm < 13.0 ? static_cast<float>(max_norm / (13.0 + 1e-6)) : 1.0f;  // 13 is not > 13
    EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{3 * scale, 4 * scale, 0})) << max_norm;
    EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{0, 12 * scale})) << max_norm;
    EXPECT_EQ(a.grad().to_vector<float>(), a2.grad().to_vector<float>()) << max_norm;
    EXPECT_EQ(b.grad().to_vector<float>(), b2.grad().to_vector<float>()) << max_norm;
  }
  Tensor none = ops::zeros({2});
  EXPECT_EQ(clip_grad_norm_on_device({none}, 1.0).item(), 0.0);  // no gradients: norm 0, nothing to scale
  expect_throw_containing<std::invalid_argument>([&] { clip_grad_norm_on_device({none}, 0.0); }, {"max_norm", "0"});
  expect_throw_containing<std::invalid_argument>([&] { clip_grad_norm({none}, -1.0); }, {"max_norm", "-1"});
}

// ---------------------------------------------------------------- accumulation and overfitting

class TwoLayer : public Module {
 public:
  TwoLayer(int64_t in, int64_t hidden, int64_t out) {
    fc1 = register_module("fc1", std::make_shared<Linear>(in, hidden));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden, out));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(gelu(fc1->forward(x))); }
  std::shared_ptr<Linear> fc1, fc2;
};

TEST(GradientAccumulation, TwoHalvesScaledByAHalfEqualOneFullBatch) {
  manual_seed(3);
  TwoLayer model(4, 6, 3);
  Tensor x = ops::randn({8, 4});
  Tensor y = ops::randint(0, 3, {8});
  cross_entropy(model.forward(x), y).backward();
  std::vector<std::vector<float>> full;
  for (const Tensor& p : model.parameters()) full.push_back(p.grad().to_vector<float>());

  model.zero_grad();
  for (int half = 0; half < 2; ++half) {
    Tensor xh = ops::narrow(x, 0, 4 * half, 4), yh = ops::narrow(y, 0, 4 * half, 4);
    (cross_entropy(model.forward(xh), yh) * 0.5).backward();  // no zero_grad in between
  }
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto acc = params[i].grad().to_vector<float>();
    ASSERT_EQ(acc.size(), full[i].size());
    for (size_t j = 0; j < acc.size(); ++j) EXPECT_NEAR(acc[j], full[i][j], 1e-6) << "parameter " << i << " [" << j << "]";
  }
}

TEST(Training, ATinyMlpOverfitsSixteenPoints) {
  manual_seed(42);
  TwoLayer model(8, 32, 4);
  Tensor x = ops::randn({16, 8});
  Tensor y = ops::randint(0, 4, {16});
  AdamW opt(decay_groups(model, 1e-2, 0.0));
  double loss_value = 1e9, acc = 0;
  int step = 0;
  for (; step < 400; ++step) {
    opt.zero_grad();
    Tensor logits = model.forward(x);
    Tensor loss = cross_entropy(logits, y);
    loss_value = loss.item();
    acc = accuracy(logits, y);
    if (acc == 1.0 && loss_value < 0.05) break;
    loss.backward();
    opt.step();
  }
  EXPECT_EQ(acc, 1.0) << "after " << step << " steps";
  EXPECT_LT(loss_value, 0.05) << "after " << step << " steps";
}

}  // namespace
