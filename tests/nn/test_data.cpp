// Data: seeded epoch orders, the DataLoader (every index once, batch sizes, the same batches with or
// without the background thread, errors from collate), TensorDataset, stack_examples and SyntheticShapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nn/data/dataloader.h"
#include "nn/data/dataset.h"
#include "nn/data/shapes.h"
#include "tensor/ops.h"

namespace {

using namespace glance;
using namespace glance::nn;

using Indices = std::vector<int64_t>;

std::vector<Indices> all_batches(DataLoader<Indices>& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Indices> out;
  while (auto batch = loader.next()) out.push_back(*batch);
  return out;
}

DataLoader<Indices>::Collate identity_collate() {
  return [](const Indices& idx) { return idx; };
}

// ---------------------------------------------------------------- epoch_order

TEST(EpochOrder, IsASeededPermutation) {
  Indices a = epoch_order(100, true, 5, 0);
  Indices sorted = a;
  std::sort(sorted.begin(), sorted.end());
  Indices identity(100);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(a, identity);  // 1/100! chance of a false failure
  EXPECT_EQ(epoch_order(100, true, 5, 0), a);
  EXPECT_NE(epoch_order(100, true, 5, 1), a);
  EXPECT_NE(epoch_order(100, true, 6, 0), a);
  EXPECT_EQ(epoch_order(100, false, 5, 3), identity);
  EXPECT_TRUE(epoch_order(0, true, 1, 0).empty());
  EXPECT_EQ(epoch_order(1, true, 1, 0), Indices{0});
}

TEST(EpochOrder, IndependentOfOtherRandomDraws) {
  Indices a = epoch_order(50, true, 9, 2);
  manual_seed(1234);
  ops::randn({1000});
  EXPECT_EQ(epoch_order(50, true, 9, 2), a);
}

// ---------------------------------------------------------------- DataLoader

TEST(DataLoader, EveryIndexExactlyOncePerEpochAndBatchSizes) {
  DataLoader<Indices> loader(10, {.batch_size = 3, .shuffle = true, .drop_last = false, .seed = 1, .prefetch = 2},
                             identity_collate());
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto batches = all_batches(loader, epoch);
    ASSERT_EQ(batches.size(), 4u);
    std::vector<size_t> sizes;
    std::multiset<int64_t> seen;
    for (auto& b : batches) {
      sizes.push_back(b.size());
      seen.insert(b.begin(), b.end());
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1}));
    std::multiset<int64_t> expected;
    for (int64_t i = 0; i < 10; ++i) expected.insert(i);
    EXPECT_EQ(seen, expected) << "epoch " << epoch;
    // The batches are the epoch order cut into pieces.
    Indices flat;
    for (auto& b : batches) flat.insert(flat.end(), b.begin(), b.end());
    EXPECT_EQ(flat, epoch_order(10, true, 1, epoch));
  }
  // Another next() after the end keeps saying "done".
  EXPECT_FALSE(loader.next().has_value());
}

TEST(DataLoader, DropLastDropsTheShortFinalBatch) {
  DataLoader<Indices> loader(10, {.batch_size = 3, .shuffle = false, .drop_last = true, .seed = 0, .prefetch = 1},
                             identity_collate());
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  auto batches = all_batches(loader, 0);
  EXPECT_EQ(batches, (std::vector<Indices>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}));
  DataLoader<Indices> exact(9, {.batch_size = 3, .shuffle = false, .drop_last = true, .seed = 0, .prefetch = 0},
                            identity_collate());
  EXPECT_EQ(all_batches(exact, 0).size(), 3u);
  DataLoader<Indices> tiny(2, {.batch_size = 3, .shuffle = false, .drop_last = true, .seed = 0, .prefetch = 2},
                           identity_collate());
  EXPECT_TRUE(all_batches(tiny, 0).empty());
  DataLoader<Indices> empty(0, {.batch_size = 3, .shuffle = true, .drop_last = false, .seed = 0, .prefetch = 2},
                            identity_collate());
  EXPECT_TRUE(all_batches(empty, 0).empty());
  EXPECT_THROW(DataLoader<Indices>(5, {.batch_size = 0}, identity_collate()), std::invalid_argument);
}

TEST(DataLoader, BackgroundThreadDoesNotChangeTheBatches) {
  auto slow_collate = [](const Indices& idx) {
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (idx.front() % 3)));  // uneven timing
    return idx;
  };
  DataLoader<Indices> direct(37, {.batch_size = 4, .shuffle = true, .drop_last = false, .seed = 77, .prefetch = 0},
                             slow_collate);
  DataLoader<Indices> threaded(37, {.batch_size = 4, .shuffle = true, .drop_last = false, .seed = 77, .prefetch = 2},
                               slow_collate);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto a = all_batches(direct, epoch);
    auto b = all_batches(threaded, epoch);
    EXPECT_EQ(a, b) << "epoch " << epoch;
    EXPECT_EQ(a.size(), 10u);
  }
  // A different seed gives different batches.
  DataLoader<Indices> other(37, {.batch_size = 4, .shuffle = true, .drop_last = false, .seed = 78, .prefetch = 2},
                            identity_collate());
  EXPECT_NE(all_batches(other, 0), all_batches(direct, 0));
}

TEST(DataLoader, RestartingOrDestroyingMidEpochIsSafe) {
  DataLoader<Indices> loader(100, {.batch_size = 5, .shuffle = true, .drop_last = false, .seed = 3, .prefetch = 2},
                             identity_collate());
  loader.start_epoch(0);
  auto first = loader.next();
  ASSERT_TRUE(first.has_value());
  // Restart the same epoch before it finished: the same sequence from the beginning.
  auto again = all_batches(loader, 0);
  ASSERT_EQ(again.size(), 20u);
  EXPECT_EQ(again.front(), *first);
  {
    DataLoader<Indices> abandoned(100, {.batch_size = 5, .shuffle = true, .drop_last = false, .seed = 3, .prefetch = 2},
                                  identity_collate());
    abandoned.start_epoch(0);
    abandoned.next();
  }  // the destructor stops its thread (a hang here would time the test out)
  SUCCEED();
}

TEST(DataLoader, CollateErrorIsRethrownByNext) {
  // Batch 2 of 4 fails. With and without the thread, batches 0 and 1 arrive, then next() throws.
  for (int64_t prefetch : {0, 2}) {
    auto collate = [](const Indices& idx) -> Indices {
      if (idx.front() == 6) throw std::runtime_error("collate failed on batch starting at 6");
      return idx;
    };
    DataLoader<Indices> loader(12, {.batch_size = 3, .shuffle = false, .drop_last = false, .seed = 0, .prefetch = prefetch},
                               collate);
    loader.start_epoch(0);
    auto b0 = loader.next();
    ASSERT_TRUE(b0.has_value()) << "prefetch " << prefetch;
    EXPECT_EQ(*b0, (Indices{0, 1, 2}));
    // Give the background thread time to reach the failing batch: the batch it built before the
    // failure must still be handed out first (the sequence must not depend on thread timing).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    try {
      auto b1 = loader.next();
      ASSERT_TRUE(b1.has_value());
      EXPECT_EQ(*b1, (Indices{3, 4, 5})) << "prefetch " << prefetch;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefetch " << prefetch << ": batch 1 was built fine but next() threw: " << e.what();
    }
    try {
      loader.next();
      ADD_FAILURE() << "prefetch " << prefetch << ": the collate error was not rethrown";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("collate failed"), std::string::npos) << e.what();
    }
  }
}

TEST(DataLoader, CollateErrorSurfacesEvenIfItHappensFirst) {
  auto collate = [](const Indices& idx) -> Indices {
    if (!idx.empty()) throw std::invalid_argument("bad example");
    return idx;
  };
  for (int64_t prefetch : {0, 3}) {
    DataLoader<Indices> loader(6, {.batch_size = 2, .shuffle = true, .drop_last = false, .seed = 0, .prefetch = prefetch},
                               collate);
    loader.start_epoch(0);
    EXPECT_THROW(loader.next(), std::invalid_argument) << "prefetch " << prefetch;
    loader.start_epoch(1);  // a new epoch starts cleanly after an error
    EXPECT_THROW(loader.next(), std::invalid_argument) << "prefetch " << prefetch;
  }
}

TEST(DataLoader, WithARealDataset) {
  std::vector<float> values(20);
  std::iota(values.begin(), values.end(), 0.0f);
  TensorDataset data(ops::from_vector<float>(values, {10, 2}), ops::from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  DataLoader<LabeledBatch> loader(data.size(), {.batch_size = 4, .shuffle = true, .drop_last = false, .seed = 2, .prefetch = 2},
                                  [&](const Indices& idx) { return stack_examples(data, idx); });
  loader.start_epoch(0);
  int64_t rows = 0;
  std::set<int64_t> labels;
  while (auto batch = loader.next()) {
    auto in = batch->inputs.to_vector<float>();
    auto lab = batch->labels.to_vector<int64_t>();
    ASSERT_EQ(batch->inputs.shape(), (Shape{static_cast<int64_t>(lab.size()), 2}));
    for (size_t i = 0; i < lab.size(); ++i) {
      EXPECT_EQ(in[2 * i], 2.0f * lab[i]);  // row i of the inputs belongs to label i's example
      labels.insert(lab[i]);
    }
    rows += static_cast<int64_t>(lab.size());
  }
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(labels.size(), 10u);
}

// ---------------------------------------------------------------- datasets

TEST(TensorDataset, GetAndStackExamples) {
  std::vector<float> values(30);
  std::iota(values.begin(), values.end(), 0.0f);
  TensorDataset data(ops::from_vector<float>(values, {5, 2, 3}), ops::from_vector<int32_t>({7, 8, 9, 10, 11}));
  EXPECT_EQ(data.size(), 5);
  Example e = data.get(3);
  EXPECT_EQ(e.label, 10);
  EXPECT_EQ(e.input.shape(), (Shape{2, 3}));
  EXPECT_EQ(e.input.to_vector<float>(), (std::vector<float>{18, 19, 20, 21, 22, 23}));
  EXPECT_THROW(data.get(5), std::out_of_range);
  EXPECT_THROW(data.get(-1), std::out_of_range);

  LabeledBatch batch = stack_examples(data, {4, 0, 2});
  EXPECT_EQ(batch.inputs.shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(batch.labels.dtype(), DType::Int64);
  EXPECT_EQ(batch.labels.to_vector<int64_t>(), (std::vector<int64_t>{11, 7, 9}));
  auto in = batch.inputs.to_vector<float>();
  EXPECT_EQ(std::vector<float>(in.begin(), in.begin() + 6), (std::vector<float>{24, 25, 26, 27, 28, 29}));
  EXPECT_EQ(std::vector<float>(in.begin() + 6, in.begin() + 12), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(std::vector<float>(in.begin() + 12, in.end()), (std::vector<float>{12, 13, 14, 15, 16, 17}));
  EXPECT_THROW(stack_examples(data, {}), std::invalid_argument);
  EXPECT_THROW(TensorDataset(ops::zeros({4, 2}), ops::zeros({3}, DType::Int64)), std::invalid_argument);
}

TEST(SyntheticShapes, DeterministicPerIndexWithTheDocumentedShape) {
  SyntheticShapes data({.count = 64, .image_size = 16, .noise = 0.1, .seed = 3});
  EXPECT_EQ(data.size(), 64);
  Example a = data.get(5), b = data.get(5);
  EXPECT_EQ(a.input.shape(), (Shape{3, 16, 16}));
  EXPECT_EQ(a.input.dtype(), DType::Float32);
  EXPECT_EQ(a.input.to_vector<float>(), b.input.to_vector<float>());
  EXPECT_EQ(a.label, b.label);
  // Another index, or another seed, is another image.
  EXPECT_NE(data.get(9).input.to_vector<float>(), a.input.to_vector<float>());
  SyntheticShapes other({.count = 64, .image_size = 16, .noise = 0.1, .seed = 4});
  EXPECT_NE(other.get(5).input.to_vector<float>(), a.input.to_vector<float>());
  // The same (seed, index) is the same image whatever else was drawn, and in any order.
  SyntheticShapes again({.count = 64, .image_size = 16, .noise = 0.1, .seed = 3});
  manual_seed(999);
  ops::randn({100});
  again.get(40);
  EXPECT_EQ(again.get(5).input.to_vector<float>(), a.input.to_vector<float>());
  for (float v : a.input.to_vector<float>()) EXPECT_LT(std::abs(v), 2.0f);
  EXPECT_THROW(data.get(64), std::out_of_range);
  SyntheticShapes sized({.count = 4, .image_size = 24, .noise = 0.05, .seed = 0});
  EXPECT_EQ(sized.get(0).input.shape(), (Shape{3, 24, 24}));
}

TEST(SyntheticShapes, NoiseFreeImagesHaveTwoColours) {
  // noise = 0 (the option's smallest value): every pixel is either the background or the shape's colour.
  SyntheticShapes clean({.count = 8, .image_size = 12, .noise = 0.0, .seed = 1});
  for (int64_t i = 0; i < 8; ++i) {
    auto v = clean.get(i).input.to_vector<float>();
    std::set<float> red(v.begin(), v.begin() + 144);
    EXPECT_EQ(red.size(), 2u) << "example " << i;
  }
}

TEST(SyntheticShapes, BalancedLabelsAndDistinctClasses) {
  const int64_t n = 800, S = 16, K = SyntheticShapes::kClasses;
  SyntheticShapes data({.count = n, .image_size = S, .noise = 0.1, .seed = 11});
  std::vector<int64_t> counts(K, 0);
  // Per class, the mean fraction of pixels brighter than the background (the shape's area). Positions and
  // colours are random, so a per-pixel mean image is mostly noise; the covered area is what tells the
  // classes apart on average.
  std::vector<double> foreground(K, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    Example e = data.get(i);
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, K);
    ++counts[e.label];
    auto v = e.input.to_vector<float>();
    int64_t bright = 0;
    for (int64_t p = 0; p < S * S; ++p) {
      double m = (v[p] + v[S * S + p] + v[2 * S * S + p]) / 3.0;
      bright += m > 0.0;
    }
    foreground[e.label] += static_cast<double>(bright) / (S * S);
  }
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_EQ(counts[k], n / K) << "class " << k;
    foreground[k] /= counts[k];
    EXPECT_GT(foreground[k], 0.03) << "class " << k << " draws no shape";
  }
  for (int64_t a = 0; a < K; ++a)
    for (int64_t b = a + 1; b < K; ++b) {
      // Shapes of different classes cover different areas on average (disc > square > cross > triangle).
      EXPECT_GT(std::abs(foreground[a] - foreground[b]), 0.005) << "classes " << a << " and " << b;
    }
}

}  // namespace
