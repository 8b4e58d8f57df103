#include "nn/functional/pool3d.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace glance::nn {

namespace {

// torch's rule "pad should be at most half of kernel size": it keeps a real element in every window.
void check_pool_padding(const Tensor& x, const Size3& kernel, const Size3& padding, const char* op) {
  for (int a = 0; a < 3; ++a) {
    if (padding[a] < 0 || 2 * padding[a] > kernel[a]) {
      throw std::invalid_argument(std::string(op) + ": padding " + size3_str(padding) +
                                  " must be between 0 and half the kernel " + size3_str(kernel) + " (x " +
                                  shape_str(x.shape()) + ")");
    }
  }
}

}  // namespace

Tensor max_pool3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding) {
  conv3d_output_size(x.shape(), kernel, stride, padding, "max_pool3d");  // rank and sizes, named "max_pool3d"
  check_pool_padding(x, kernel, padding, "max_pool3d");
  // [B, C, K, To, Ho, Wo] with -inf in the padding -> max over the K window elements.
  const double minus_inf = -std::numeric_limits<double>::infinity();
  return max(unfold3d(x, kernel, stride, padding, minus_inf), {2});
}

Tensor avg_pool3d(const Tensor& x, const Size3& kernel, const Size3& stride, const Size3& padding) {
  conv3d_output_size(x.shape(), kernel, stride, padding, "avg_pool3d");
  check_pool_padding(x, kernel, padding, "avg_pool3d");
  // [B, C, K, To, Ho, Wo] with 0 in the padding -> mean over all K (padding counts, as in torch).
  return mean(unfold3d(x, kernel, stride, padding, 0.0), {2});
}

}  // namespace glance::nn
