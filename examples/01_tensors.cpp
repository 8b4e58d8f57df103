// Example 01: tensors. What a tensor is (storage + shape + strides + offset), why views cost nothing,
// broadcasting, reductions and matmul. Run: ./build/examples/01_tensors
#include <iostream>

#include "autograd/glance.h"

using namespace glance;

static void show_layout(const char* what, const Tensor& t) {
  std::cout << what << ": shape " << shape_str(t.shape()) << ", strides " << shape_str(t.strides()) << ", offset "
            << t.offset() << (t.is_contiguous() ? ", contiguous" : ", not contiguous") << "\n";
}

int main() {
  std::cout << "== 1. A tensor is a view of a block of memory ==\n";
  Tensor x = arange(0, 12, 1, DType::Float32);  // 12 numbers in one Storage
  Tensor m = reshape(x, {3, 4});                // the same 12 numbers seen as 3 rows of 4
  std::cout << m << "\n";
  show_layout("m", m);
  std::cout << "element (i, j) sits at offset + i*" << m.strides()[0] << " + j*" << m.strides()[1] << "\n\n";

  std::cout << "== 2. Views share storage: no copy ==\n";
  Tensor mt = transpose(m, 0, 1);
  show_layout("m transposed", mt);
  Tensor col = select(m, 1, 2);  // column 2
  show_layout("column 2 of m", col);
  std::cout << "column 2 of m: " << col << "\n";
  ops::fill_(col, -1.0);  // writing through the view changes m itself
  std::cout << "after filling the column view with -1, m is\n" << m << "\n";
  std::cout << "same storage: " << (col.storage() == m.storage() ? "yes" : "no") << "\n";
  Tensor c = contiguous(mt);  // contiguous() copies only because the transpose is not row-major
  show_layout("contiguous(m transposed)", c);
  std::cout << "\n";

  std::cout << "== 3. Broadcasting: size-1 axes stretch with stride 0 ==\n";
  Tensor row = from_vector<float>({10, 20, 30, 40}, {1, 4});
  Tensor column = from_vector<float>({1, 2, 3}, {3, 1});
  show_layout("row expanded to [3, 4]", expand(row, {3, 4}));
  std::cout << "column + row =\n" << column + row << "\n\n";

  std::cout << "== 4. Reductions over any axes ==\n";
  Tensor r = reshape(arange(0, 6, 1, DType::Float32), {2, 3});
  std::cout << "r = " << r << "\n";
  std::cout << "sum over axis 0: " << sum(r, {0}) << "\n";
  std::cout << "mean over axis 1 (keepdim): " << mean(r, {1}, true) << "\n";
  std::cout << "argmax over axis 1: " << argmax(r, 1) << "\n\n";

  std::cout << "== 5. Matrix multiply with broadcast batch axes ==\n";
  Tensor a = reshape(arange(0, 6, 1, DType::Float32), {2, 3});
  Tensor b = ones({3, 2});
  std::cout << "a @ b = " << matmul(a, b) << "\n";
  Tensor batch = randn({4, 2, 3});
  std::cout << "[4, 2, 3] @ [3, 2] -> " << shape_str(matmul(batch, b).shape()) << "\n\n";

  std::cout << "== 6. Seeded random numbers ==\n";
  manual_seed(42);
  Tensor first = randn({3});
  manual_seed(42);
  Tensor again = randn({3});
  std::cout << "randn after seed 42, twice:\n  " << first << "\n  " << again << "\n";
  return 0;
}
