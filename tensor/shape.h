// Shape and strides: plain vectors of int64, plus the few rules every op shares
// (contiguous strides, negative axes, broadcasting) so each op states them once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace glance {

using Shape = std::vector<int64_t>;    // sizes, outermost first: [B, T, C]
using Strides = std::vector<int64_t>;  // steps in elements (not bytes) per axis

int64_t numel_of(const Shape& shape);            // product of sizes (1 for a scalar [])
Strides contiguous_strides(const Shape& shape);  // row-major: [B,T,C] -> [T*C, C, 1]
std::string shape_str(const Shape& shape);       // "[2, 3]"

// -1 means the last axis. Throws "<op>: axis 5 is out of range for a tensor of 3 dims".
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);
// Sorted, unique, non-negative axes; an empty list means "every axis".
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op);

// NumPy broadcasting: align from the right; sizes must match or be 1.
// Throws "<op>: shapes [2, 3] and [4] cannot broadcast (axis -1: 3 vs 4)".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace glance
