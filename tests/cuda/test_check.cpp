// GLANCE_CUDA_CHECK / GLANCE_CUBLAS_CHECK: the error text names the file, the line, the failing call and the
// runtime's own description. Formatting an error code needs no GPU (cudaGetErrorString and
// cublasGetStatusString are lookups), so the first two tests run everywhere.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "cuda/check.h"
#include "cuda_testing.h"

namespace {

cudaError_t fail_with(cudaError_t e) { return e; }
cublasStatus_t fail_with_status(cublasStatus_t s) { return s; }

std::string message_of_cuda_check(cudaError_t e, int* line) {
  try {
    *line = __LINE__ + 1;
    GLANCE_CUDA_CHECK(fail_with(e));
  } catch (const std::runtime_error& err) {
    return err.what();
  }
  return "";
}

}  // namespace

TEST(CudaCheck, CudaErrorTextNamesFileLineCallAndError) {
  int line = 0;
  const std::string msg = message_of_cuda_check(cudaErrorInvalidValue, &line);
  EXPECT_NE(msg.find("CUDA error at "), std::string::npos) << msg;
  EXPECT_NE(msg.find("test_check.cpp:" + std::to_string(line)), std::string::npos) << msg;
  EXPECT_NE(msg.find("fail_with(e)"), std::string::npos) << msg;       // the call, as written
  EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;  // the error's name
  EXPECT_NE(msg.find(cudaGetErrorString(cudaErrorInvalidValue)), std::string::npos) << msg;
}

TEST(CudaCheck, SuccessDoesNotThrow) {
  EXPECT_NO_THROW(GLANCE_CUDA_CHECK(fail_with(cudaSuccess)));
  EXPECT_NO_THROW(GLANCE_CUBLAS_CHECK(fail_with_status(CUBLAS_STATUS_SUCCESS)));
}

TEST(CudaCheck, CublasErrorTextNamesFileLineCallAndStatus) {
  std::string msg;
  int line = 0;
  try {
    line = __LINE__ + 1;
    GLANCE_CUBLAS_CHECK(fail_with_status(CUBLAS_STATUS_INVALID_VALUE));
  } catch (const std::runtime_error& err) {
    msg = err.what();
  }
  EXPECT_NE(msg.find("cuBLAS error at "), std::string::npos) << msg;
  EXPECT_NE(msg.find("test_check.cpp:" + std::to_string(line)), std::string::npos) << msg;
  EXPECT_NE(msg.find("fail_with_status(CUBLAS_STATUS_INVALID_VALUE)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUBLAS_STATUS_INVALID_VALUE)"), std::string::npos) << msg;  // "(NAME)" at the end
}

// A real failing runtime call on a machine with a GPU: asking for a device that does not exist.
TEST(CudaCheck, RealRuntimeErrorIsReported) {
  GLANCE_REQUIRE_CUDA();
  std::string msg;
  try {
    GLANCE_CUDA_CHECK(cudaSetDevice(9999));
  } catch (const std::runtime_error& err) {
    msg = err.what();
  }
  EXPECT_NE(msg.find("cudaSetDevice(9999)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cudaErrorInvalidDevice"), std::string::npos) << msg;
  // The error was cleared: the next call succeeds.
  EXPECT_NO_THROW(GLANCE_CUDA_CHECK(cudaGetLastError()));
}

