// CUDA tests skip cleanly where no GPU is present (GTEST_SKIP), so a CUDA-enabled build passes on CI.
#include <gtest/gtest.h>

#include "cuda/device_query.h"

TEST(CudaDevice, CountIsConsistent) {
  int n = glance::cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(glance::cuda::available(), n > 0);
  if (n == 0) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
}
