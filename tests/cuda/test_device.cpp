// The device query and the messages a program gets when it asks for a GPU that is not there. CUDA tests skip
// cleanly where no GPU is present (GTEST_SKIP), so a CUDA-enabled build passes on CI; the no-device message
// test is the one that runs *only* there.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/device_query.h"
#include "cuda_testing.h"
#include "tensor/ops.h"

using namespace glance;

namespace {

// The message of the exception `fn` throws ("" if it throws none).
template <typename Fn>
std::string thrown_message(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(CudaDevice, CountIsConsistent) {
  int n = glance::cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(glance::cuda::available(), n > 0);
  if (n == 0) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
}

// Linking glance_cuda is enough for backend_for to find the backend (glance::linked_cuda_backend, declared weak
// in tensor/device.cpp, is defined by cuda_backend.cu's object file).
TEST(CudaDevice, BackendIsRegisteredByLinking) {
  if (glance::cuda::available()) {
    EXPECT_EQ(&backend_for(Device::cuda(0)), glance::cuda::backend_instance());
  } else {
    // Without a device backend_for throws, but with the backend's own message, not "not linked".
    const std::string msg = thrown_message([] { backend_for(Device::cuda(0)); });
    EXPECT_EQ(msg.find("not linked"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no CUDA device present"), std::string::npos) << msg;
  }
}

// Device::cuda() on a machine without a GPU: an exception that names the device, never a crash.
TEST(CudaDevice, NoDeviceMessageNamesTheDevice) {
  if (glance::cuda::available()) GTEST_SKIP() << "a CUDA device is present; this checks the message without one";
  const std::string msg = thrown_message([] { Tensor::empty({2, 3}, DType::Float32, Device::cuda()); });
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no CUDA device present"), std::string::npos) << msg;
  const std::string msg2 = thrown_message([] { ops::to_device(ops::ones({4}), Device::cuda()); });
  EXPECT_NE(msg2.find("no CUDA device present"), std::string::npos) << msg2;
}

TEST(CudaDevice, IndexPastTheLastDeviceIsRefused) {
  GLANCE_REQUIRE_CUDA();
  const int n = glance::cuda::device_count();
  const std::string msg = thrown_message([n] { Tensor::empty({2}, DType::Float32, Device::cuda(n + 3)); });
  EXPECT_NE(msg.find("cuda:" + std::to_string(n + 3)), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUDA device"), std::string::npos) << msg;
}

TEST(CudaDevice, RoundTripThroughTheDevice) {
  GLANCE_REQUIRE_CUDA();
  // Small (direct cudaMemcpy) and large (pinned staging, several 4 MiB chunks plus a partial one).
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(1000), int64_t(5'000'001)}) {
    Tensor x = glance::cuda_testing::random_tensor({n}, DType::Float32, 11);
    Tensor back = glance::cuda_testing::to_cpu(glance::cuda_testing::to_gpu(x));
    glance::cuda_testing::expect_equal(x, back, "round trip of " + std::to_string(n) + " floats");
  }
}

TEST(CudaDevice, CpuTensorHandedToTheCudaBackendIsRefused) {
  GLANCE_REQUIRE_CUDA();
  Tensor cpu = ops::ones({3});
  Tensor gpu = ops::empty({3}, DType::Float32, Device::cuda());
  const std::string msg = thrown_message([&] { glance::cuda::backend_instance()->copy(gpu, cpu); });
  EXPECT_NE(msg.find("is on cpu"), std::string::npos) << msg;
}
