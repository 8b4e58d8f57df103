// CPU-vs-CUDA parity for matmul: cuBLAS for float32/float64 (the column-major trick, OP_N / OP_T from the
// views' strides, copies for views cuBLAS cannot read, stride-0 batch broadcast), the integer kernel, vector
// operands, K = 0, and the TF32 opt-in.
#include <gtest/gtest.h>

#include <string>

#include "cuda_testing.h"

using namespace glance;
using namespace glance::cuda_testing;

namespace {

struct Dims {
  int64_t batch, M, K, N;
};

double matmul_atol(DType d, int64_t K) { return d == DType::Float32 ? 2e-6 * double(K + 1) : 1e-12 * double(K + 1); }

}  // namespace

TEST(CudaMatmul, EveryDtypeEveryOperandLayout) {
  GLANCE_REQUIRE_CUDA();
  const Dims dims[] = {{1, 1, 1, 1}, {1, 7, 5, 3}, {4, 33, 17, 65}, {2, 128, 256, 64}, {3, 1, 40, 9}, {2, 9, 40, 1}};
  uint64_t seed = 1;
  for (DType d : {DType::Float32, DType::Float64, DType::Int32, DType::Int64}) {
    for (const Dims& s : dims) {
      for (Layout la : all_layouts()) {
        for (Layout lb : all_layouts()) {
          auto [ac, ag] = make_pair_view({s.batch, s.M, s.K}, d, la, ++seed, -3, 3);
          auto [bc, bg] = make_pair_view({s.batch, s.K, s.N}, d, lb, ++seed, -3, 3);
          expect_close(ops::matmul(ac, bc), ops::matmul(ag, bg), is_floating(d) ? 1e-5 : 0.0, matmul_atol(d, s.K),
                       std::string("matmul ") + dtype_name(d) + " [" + std::to_string(s.batch) + ", " +
                           std::to_string(s.M) + ", " + std::to_string(s.K) + "] x [.., " + std::to_string(s.N) +
                           "], a " + layout_name(la) + ", b " + layout_name(lb));
        }
      }
    }
  }
}

TEST(CudaMatmul, BroadcastBatchAndVectors) {
  GLANCE_REQUIRE_CUDA();
  Tensor a = random_tensor({2, 1, 6, 5}, DType::Float32, 10), b = random_tensor({3, 5, 4}, DType::Float32, 11);
  expect_close(ops::matmul(a, b), ops::matmul(to_gpu(a), to_gpu(b)), 1e-5, 1e-5, "[2,1,6,5] @ [3,5,4]");
  // A weight shared by every batch entry: [B, T, C] @ [C, D] (b's batch stride is 0).
  Tensor x = random_tensor({5, 17, 32}, DType::Float32, 12), w = random_tensor({32, 24}, DType::Float32, 13);
  expect_close(ops::matmul(x, w), ops::matmul(to_gpu(x), to_gpu(w)), 1e-5, 1e-4, "[B,T,C] @ [C,D]");
  // The transposed weight, as a linear layer uses it: x @ w^T.
  Tensor wt = random_tensor({24, 32}, DType::Float32, 14);
  expect_close(ops::matmul(x, ops::transpose(wt, 0, 1)), ops::matmul(to_gpu(x), ops::transpose(to_gpu(wt), 0, 1)),
               1e-5, 1e-4, "x @ w^T");
  Tensor v = random_tensor({5}, DType::Float64, 15), m = random_tensor({5, 3}, DType::Float64, 16);
  expect_close(ops::matmul(v, m), ops::matmul(to_gpu(v), to_gpu(m)), 1e-12, 1e-12, "vector @ matrix");
  expect_close(ops::matmul(ops::transpose(m, 0, 1), v), ops::matmul(ops::transpose(to_gpu(m), 0, 1), to_gpu(v)),
               1e-12, 1e-12, "matrix^T @ vector");
  expect_close(ops::matmul(v, v), ops::matmul(to_gpu(v), to_gpu(v)), 1e-12, 1e-12, "dot product");
}

TEST(CudaMatmul, EmptyInnerDimensionGivesZeros) {
  GLANCE_REQUIRE_CUDA();
  Tensor a = ops::zeros({2, 3, 0}), b = ops::zeros({2, 0, 4});
  expect_equal(ops::matmul(a, b), ops::matmul(to_gpu(a), to_gpu(b)), "K = 0");
  Tensor e = ops::zeros({0, 3}), f = ops::zeros({3, 2});
  expect_equal(ops::matmul(e, f), ops::matmul(to_gpu(e), to_gpu(f)), "M = 0");
}

TEST(CudaMatmul, LargeBatchIsSplitIntoCublasSizedGroups) {
  GLANCE_REQUIRE_CUDA();
  Tensor a = random_tensor({70'000, 2, 3}, DType::Float32, 20), b = random_tensor({70'000, 3, 2}, DType::Float32, 21);
  expect_close(ops::matmul(a, b), ops::matmul(to_gpu(a), to_gpu(b)), 1e-5, 1e-5, "70000 small products");
}

TEST(CudaMatmul, Tf32IsOptInAndCloseToFloat32) {
  GLANCE_REQUIRE_CUDA();
  EXPECT_FALSE(glance::cuda::allow_tf32());  // off by default
  Tensor a = random_tensor({256, 512}, DType::Float32, 30), b = random_tensor({512, 128}, DType::Float32, 31);
  Tensor expected = ops::matmul(a, b);
  glance::cuda::set_allow_tf32(true);
  Tensor tf32 = ops::matmul(to_gpu(a), to_gpu(b));
  glance::cuda::set_allow_tf32(false);
  // TF32 keeps 10 mantissa bits of each input: products are good to ~1e-3 relative; sums of 512 of them to
  // a few 1e-2 absolute at this scale (|entries| ~ 25).
  expect_close(expected, tf32, 1e-2, 5e-2, "TF32 matmul");
  expect_close(expected, ops::matmul(to_gpu(a), to_gpu(b)), 1e-5, 2e-3, "float32 matmul after turning TF32 off");
}
