// CPU-vs-CUDA parity for index_select, gather and scatter_add: every dtype, every axis, strided views,
// repeated indices (scatter_add's atomics, byte-sized ones included), and an index tensor left on the CPU.
#include <gtest/gtest.h>

#include <string>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

Tensor random_index(const Shape& shape, int64_t size, uint64_t seed) {
  Generator gen(seed);
  return ops::randint(0, size, shape, &gen);
}

}  // namespace

TEST(CudaIndexing, IndexSelectEveryDtypeAxisAndLayout) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 1;
  for (DType d : all_dtypes()) {
    for (Layout l : all_layouts()) {
      auto [c, g] = make_pair_view({5, 6, 7}, d, l, ++seed, 0, 100);
      for (int64_t axis : {0, 1, 2}) {
        Tensor idx = random_index({9}, c.shape()[axis], ++seed);  // repeats allowed
        expect_equal(ops::index_select(c, axis, idx), ops::index_select(g, axis, to_gpu(idx)),
                     std::string("index_select ") + dtype_name(d) + " " + layout_name(l) + " axis " + std::to_string(axis));
        // The index left on the CPU: the backend copies it over.
        expect_equal(ops::index_select(c, axis, idx), ops::index_select(g, axis, idx),
                     std::string("index_select with a CPU index ") + dtype_name(d));
      }
    }
  }
  // A strided index (every other element of a longer one).
  Tensor x = random_tensor({10, 4}, DType::Float32, 90), long_idx = random_index({12}, 10, 91);
  Tensor idx = ops::slice(long_idx, 0, 0, 12, 2);
  expect_equal(ops::index_select(x, 0, idx), ops::index_select(to_gpu(x), 0, ops::slice(to_gpu(long_idx), 0, 0, 12, 2)),
               "index_select with a strided index");
}

TEST(CudaIndexing, EmbeddingLookupSizedIndexSelect) {
  GLANCE_REQUIRE_CUDA();
  Tensor table = random_tensor({1000, 64}, DType::Float32, 5), idx = random_index({4096}, 1000, 6);
  expect_equal(ops::index_select(table, 0, idx), ops::index_select(to_gpu(table), 0, to_gpu(idx)), "embedding lookup");
}

TEST(CudaIndexing, GatherEveryDtypeAxisAndLayout) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (DType d : all_dtypes()) {
    for (Layout l : all_layouts()) {
      auto [c, g] = make_pair_view({5, 6, 7}, d, l, ++seed, 0, 100);
      for (int64_t axis : {0, 1, 2}) {
        Shape ishape = {4, 5, 6};  // smaller than the input off the axis, as gather allows
        ishape[axis] = 8;
        Tensor idx = random_index(ishape, c.shape()[axis], ++seed);
        expect_equal(ops::gather(c, axis, idx), ops::gather(g, axis, to_gpu(idx)),
                     std::string("gather ") + dtype_name(d) + " " + layout_name(l) + " axis " + std::to_string(axis));
        // A transposed index view.
        Tensor idx_t = ops::contiguous(ops::transpose(idx, 0, 2));
        expect_equal(ops::gather(c, axis, ops::transpose(idx_t, 0, 2)),
                     ops::gather(g, axis, ops::transpose(to_gpu(idx_t), 0, 2)),
                     std::string("gather with a transposed index ") + dtype_name(d));
      }
    }
  }
}

TEST(CudaIndexing, ScatterAddEveryDtypeWithCollisions) {
  GLANCE_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (DType d : all_dtypes()) {
    for (Layout l : all_layouts()) {
      auto [c, g] = make_pair_view({5, 6, 7}, d, l, ++seed, 0, 3);
      for (int64_t axis : {0, 1, 2}) {
        Shape sshape = {5, 6, 7};
        sshape[axis] = 20;  // 20 sources onto 5..7 slots: many land on the same element
        Tensor idx = random_index(sshape, c.shape()[axis], ++seed);
        Tensor src = random_tensor(sshape, d, ++seed, 0, 3);
        // Integer sums are exact in any order; float sums of small values too (|sums| < 2^24 in steps of
        // representable values) up to rounding: compare with a tolerance.
        expect_close(ops::scatter_add(c, axis, idx, src), ops::scatter_add(g, axis, to_gpu(idx), to_gpu(src)),
                     rtol_for(d), atol_for(d) * 10,
                     std::string("scatter_add ") + dtype_name(d) + " " + layout_name(l) + " axis " + std::to_string(axis));
      }
    }
  }
}

TEST(CudaIndexing, ScatterAddManyCollisionsOnBytes) {
  GLANCE_REQUIRE_CUDA();
  // 10000 uint8 additions onto 3 neighbouring bytes of one 32-bit word: the CAS loop must not lose any
  // (the sum wraps modulo 256 on both devices).
  Tensor x = ops::zeros({3}, DType::UInt8);
  Tensor idx = random_index({10'000}, 3, 7);
  Tensor src = random_tensor({10'000}, DType::UInt8, 8, 0, 5);
  expect_equal(ops::scatter_add(x, 0, idx, src), ops::scatter_add(to_gpu(x), 0, to_gpu(idx), to_gpu(src)),
               "uint8 scatter_add with 10000 collisions");
  Tensor xb = ops::zeros({3}, DType::Bool);
  Tensor sb = random_tensor({10'000}, DType::Bool, 9);
  expect_equal(ops::scatter_add(xb, 0, idx, sb), ops::scatter_add(to_gpu(xb), 0, to_gpu(idx), to_gpu(sb)),
               "bool scatter_add (logical or)");
}
