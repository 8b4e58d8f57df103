// Ops that read several tensors refuse operands on different devices, naming both, instead of letting one
// backend read the other device's memory. (Index tensors are the exception: a CPU index is copied over.)
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "cuda_testing.h"

namespace {

using namespace glance;
using namespace glance::cuda_testing;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(CudaDeviceMismatch, TwoOperandOpsNameBothDevices) {
  GLANCE_REQUIRE_CUDA();
  const Tensor host = random_tensor({4, 4}, DType::Float32, 1), device = to_gpu(host);
  EXPECT_NE(error_of([&] { ops::matmul(host, device); }).find("matmul: operands are on different devices (cpu and cuda:0)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::binary(BinaryOp::Add, device, host); }).find("different devices"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::layer_norm(device, ops::ones({4}), Tensor()); }).find("on cuda:0, got float32 [4] on cpu"),
            std::string::npos);
  const Tensor index = ops::from_vector(std::vector<int64_t>{0, 1, 2, 3});
  EXPECT_NE(error_of([&] { ops::scatter_add(device, 0, ops::reshape(index, {4, 1}), ops::zeros({4, 1})); })
                .find("scatter_add: src is on cpu, the input on cuda:0"),
            std::string::npos);
  // A CPU index is fine: it is copied to the input's device.
  EXPECT_EQ(to_cpu(ops::index_select(device, 0, index)).to_vector<float>(), host.to_vector<float>());
}

}  // namespace
