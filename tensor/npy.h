// NumPy's .npy format: load and save tensors so values move to and from Python untouched.
// Format: "\x93NUMPY", version, header length, a Python-dict header {'descr', 'fortran_order', 'shape'},
// then the raw little-endian data. https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#pragma once
#include <string>

#include "tensor/tensor.h"

namespace glance {

// Writes atomically (a temporary file beside `path`, then rename): a failed save leaves no partial file.
void save_npy(const std::string& path, const Tensor& t);
// Reads float32/float64/int32/int64/uint8/bool arrays (C or Fortran order). Errors name the file and
// the problem: "load_npy: data/x.npy: truncated data (expected 96 bytes, found 40)".
Tensor load_npy(const std::string& path);

}  // namespace glance
