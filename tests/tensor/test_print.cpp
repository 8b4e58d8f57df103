// Tensor::str() and operator<<: the expected strings are what PyTorch 2.x prints for the same tensors
// (with glance's dtype names: "dtype=float64" where torch writes "dtype=torch.float64").
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace {

using namespace glance;

TEST(Print, FloatMatrixAlignsColumns) {
  Tensor t = ops::from_vector<float>({1, 2, -3.5f, 4}, {2, 2});
  EXPECT_EQ(t.str(),
            "tensor([[ 1.0000,  2.0000],\n"
            "        [-3.5000,  4.0000]])");
  std::ostringstream out;
  out << t;
  EXPECT_EQ(out.str(), t.str());
}

TEST(Print, WholeNumberFloatsDropTheDecimals) {
  EXPECT_EQ(ops::from_vector<float>({1, 2, 3}).str(), "tensor([1., 2., 3.])");
  EXPECT_EQ(ops::from_vector<float>({-10, 2}).str(), "tensor([-10.,   2.])");
  EXPECT_EQ(ops::zeros({2}).str(), "tensor([0., 0.])");
  EXPECT_EQ(ops::from_vector<double>({1, 2}).str(), "tensor([1., 2.], dtype=float64)");
}

TEST(Print, ScientificWhenTheRangeIsWide) {
  EXPECT_EQ(ops::from_vector<float>({1e-5f, 1}).str(), "tensor([1.0000e-05, 1.0000e+00])");
  EXPECT_EQ(ops::from_vector<double>({1e9, 2.5}).str(), "tensor([1.0000e+09, 2.5000e+00], dtype=float64)");
  EXPECT_EQ(ops::from_vector<float>({1, 2000}).str(), "tensor([1.0000e+00, 2.0000e+03])");  // whole, but > 1000x
  EXPECT_EQ(ops::from_vector<float>({0.5f, 20}).str(), "tensor([ 0.5000, 20.0000])");
}

TEST(Print, NanAndInf) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ops::from_vector<double>({nan, 1.5}).str(), "tensor([   nan, 1.5000], dtype=float64)");
  EXPECT_EQ(ops::from_vector<double>({inf, 1, -inf}).str(), "tensor([inf, 1., -inf], dtype=float64)");
}

TEST(Print, IntegersAndBools) {
  EXPECT_EQ(ops::from_vector<int64_t>({1, -20, 300}).str(), "tensor([  1, -20, 300])");
  EXPECT_EQ(ops::from_vector<int32_t>({7, 8}).str(), "tensor([7, 8], dtype=int32)");
  EXPECT_EQ(ops::from_vector<uint8_t>({0, 255}).str(), "tensor([  0, 255], dtype=uint8)");
  EXPECT_EQ(ops::from_vector<bool>({true, false}).str(), "tensor([ True, False])");
  EXPECT_EQ(ops::from_vector<bool>({true, true}, {2, 1}).str(),
            "tensor([[True],\n"
            "        [True]])");
}

TEST(Print, ZeroDim) {
  EXPECT_EQ(ops::scalar(3.5).str(), "tensor(3.5000)");
  EXPECT_EQ(ops::scalar(-2).str(), "tensor(-2.)");
  EXPECT_EQ(ops::scalar(5, DType::Int64).str(), "tensor(5)");
  EXPECT_EQ(ops::scalar(1, DType::Bool).str(), "tensor(True)");
  EXPECT_EQ(ops::scalar(0.25, DType::Float64).str(), "tensor(0.2500, dtype=float64)");
}

TEST(Print, Empty) {
  EXPECT_EQ(ops::zeros({0, 3}).str(), "tensor([], size=(0, 3))");
  EXPECT_EQ(ops::zeros({0}).str(), "tensor([])");
  EXPECT_EQ(ops::zeros({0}, DType::Int64).str(), "tensor([], dtype=int64)");  // no values to show the type
  EXPECT_EQ(ops::zeros({2, 0, 1}, DType::Bool).str(), "tensor([], size=(2, 0, 1), dtype=bool)");
}

TEST(Print, RequiresGrad) {
  Tensor w = ops::from_vector<float>({1.5f, 2});
  w.set_requires_grad();
  EXPECT_EQ(w.str(), "tensor([1.5000, 2.0000], requires_grad=True)");
  Tensor d = ops::from_vector<double>({1, 2});
  d.set_requires_grad();
  EXPECT_EQ(d.str(), "tensor([1., 2.], dtype=float64, requires_grad=True)");
}

TEST(Print, ThreeDimsSeparateBlocksWithABlankLine) {
  Tensor t = ops::reshape(ops::arange(0, 8), {2, 2, 2});
  EXPECT_EQ(t.str(),
            "tensor([[[0, 1],\n"
            "         [2, 3]],\n"
            "\n"
            "        [[4, 5],\n"
            "         [6, 7]]])");
}

TEST(Print, NonContiguousViewPrintsItsOwnLayout) {
  Tensor t = ops::transpose(ops::reshape(ops::arange(0, 6), {2, 3}), 0, 1);  // [[0, 3], [1, 4], [2, 5]]
  EXPECT_EQ(t.str(),
            "tensor([[0, 3],\n"
            "        [1, 4],\n"
            "        [2, 5]])");
}

TEST(Print, LongRowsWrapAt80Columns) {
  // Each element is 3 wide + ", ": (80 - 7) / 5 = 14 per line.
  EXPECT_EQ(ops::arange(0, 30, 1, DType::Float32).str(),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
            "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
            "        28., 29.])");
}

TEST(Print, SummarisesPastAThousandElements) {
  EXPECT_EQ(ops::arange(0, 2000).str(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  EXPECT_EQ(ops::reshape(ops::arange(0, 2000), {2, 1000}).str(),
            "tensor([[   0,    1,    2,  ...,  997,  998,  999],\n"
            "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]])");
  EXPECT_EQ(ops::reshape(ops::arange(0, 1100), {100, 11}).str(),
            "tensor([[   0,    1,    2,  ...,    8,    9,   10],\n"
            "        [  11,   12,   13,  ...,   19,   20,   21],\n"
            "        [  22,   23,   24,  ...,   30,   31,   32],\n"
            "        ...,\n"
            "        [1067, 1068, 1069,  ..., 1075, 1076, 1077],\n"
            "        [1078, 1079, 1080,  ..., 1086, 1087, 1088],\n"
            "        [1089, 1090, 1091,  ..., 1097, 1098, 1099]])");
  // 1000 elements exactly are all shown.
  EXPECT_EQ(ops::arange(0, 1000).str().find("..."), std::string::npos);
}

TEST(Print, LongSuffixMovesToItsOwnLine) {
  // The body is 77 characters (torch counts 79), so ", dtype=float64" would pass 80 columns.
  Tensor t = ops::arange(0, 14, 1, DType::Float64);
  EXPECT_EQ(t.str(),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
            "       dtype=float64)");
}

TEST(Print, Undefined) { EXPECT_EQ(Tensor().str(), "tensor(undefined)"); }

}  // namespace
