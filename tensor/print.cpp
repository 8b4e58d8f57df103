// Tensor::str(): the PyTorch printout, rule for rule (torch/_tensor_str.py with its default print
// options: precision 4, line width 80, summarise past 1000 elements showing 3 edge items per axis).
//
//   tensor([[ 1.0000,  2.0000],          every element padded to one common width, so columns line up;
//           [-3.5000,  4.0000]])         nested rows indent by one per level, blocks of >2 dims are
//                                        separated by blank lines
//   tensor([1., 2.])                     floats that are all whole numbers print without decimals
//   tensor([1.0000e-05, 1.0000e+00])     scientific when the values span too much (see Formatter)
//   tensor([ True, False])               bools; ints print as they are
//   tensor([0, 1, 2,  ..., 7, 8, 9])     summarised: only the first/last 3 entries along each long axis
//   tensor(3.5000)  tensor([], size=(0, 3))
//
// then the suffixes: device='cuda:0' off the CPU, dtype=... unless float32, int64 or bool (as torch,
// whose defaults those are), size=... for an empty tensor that is not 1-D, requires_grad=True.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/tensor.h"

namespace glance {

namespace {

constexpr int kPrecision = 4;
constexpr int kLineWidth = 80;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kThreshold = 1000;

// Python's "{:.4f}" / "{:.4e}" / "{:.0f}": printf, except that Python spells NaN and infinity "nan",
// "inf", "-inf" (printf may write "-nan").
std::string py_format(double v, char conversion, int precision) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char fmt[8] = {'%', '.', '*', conversion, '\0'};
  char buf[512];  // "%.4f" of 1e308 needs ~315 characters
  std::snprintf(buf, sizeof buf, fmt, precision, v);
  return buf;
}

// The host copy being printed, read by row-major flat index.
struct HostValues {
  Tensor t;  // contiguous, on the CPU
  bool floating() const { return is_floating(t.dtype()); }
  double real(int64_t i) const {
    double v = 0;
    GLANCE_DISPATCH(t.dtype(), T, { v = static_cast<double>(static_cast<const T*>(t.raw_data())[i]); });
    return v;
  }
  std::string integer_text(int64_t i) const {  // ints and bools, exactly (no trip through double)
    switch (t.dtype()) {
      case DType::Bool: return static_cast<const bool*>(t.raw_data())[i] ? "True" : "False";
      case DType::UInt8: return std::to_string(static_cast<const uint8_t*>(t.raw_data())[i]);
      case DType::Int32: return std::to_string(static_cast<const int32_t*>(t.raw_data())[i]);
      case DType::Int64: return std::to_string(static_cast<const int64_t*>(t.raw_data())[i]);
      default: return "?";
    }
  }
};

// The positions printed along an axis of `size`: all of them, or when summarising a long axis the
// first and last kEdgeItems with -1 marking the "..." between them.
std::vector<int64_t> shown(int64_t size, bool summarize) {
  std::vector<int64_t> idx;
  if (summarize && size > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
    idx.push_back(-1);
    for (int64_t i = size - kEdgeItems; i < size; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < size; ++i) idx.push_back(i);
  }
  return idx;
}

// Flat indices of every element that will be printed (the formatter looks at these only, as torch's
// get_summarized_data does).
void collect_shown(const Shape& shape, const Strides& strides, size_t axis, int64_t base, bool summarize,
                   std::vector<int64_t>& out) {
  if (axis == shape.size()) {
    out.push_back(base);
    return;
  }
  for (int64_t i : shown(shape[axis], summarize)) {
    if (i >= 0) collect_shown(shape, strides, axis + 1, base + i * strides[axis], summarize, out);
  }
}

// Decides one style and one width for all the printed elements (torch's _Formatter):
//   ints, bools   as they are; width = the longest
//   floats        over the finite nonzero values:
//                   all whole numbers -> "3." style, unless max/min > 1000 or max > 1e8 -> scientific
//                   otherwise         -> "%.4f",    unless max/min > 1000 or max > 1e8
//                                                    or min < 1e-4                    -> scientific "%.4e"
class Formatter {
 public:
  Formatter(const HostValues& values, const std::vector<int64_t>& indices) : values_(values) {
    if (!values.floating()) {
      for (int64_t i : indices) width_ = std::max(width_, values.integer_text(i).size());
      return;
    }
    std::vector<double> finite_nonzero;
    for (int64_t i : indices) {
      double v = values.real(i);
      if (std::isfinite(v) && v != 0) finite_nonzero.push_back(v);
    }
    if (finite_nonzero.empty()) return;  // only zeros, nan, inf: whole-number style, width from format()
    double lo = std::fabs(finite_nonzero[0]), hi = lo;
    for (double v : finite_nonzero) {
      lo = std::min(lo, std::fabs(v));
      hi = std::max(hi, std::fabs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    bool wide_range = hi / lo > 1000.0 || hi > 1.0e8;
    sci_mode_ = int_mode_ ? wide_range : (wide_range || lo < 1.0e-4);
    for (double v : finite_nonzero) {
      // Whole-number style reserves one more column for the "." appended in format().
      size_t w = sci_mode_ ? py_format(v, 'e', kPrecision).size()
                 : int_mode_ ? py_format(v, 'f', 0).size() + 1
                             : py_format(v, 'f', kPrecision).size();
      width_ = std::max(width_, w);
    }
  }

  size_t width() const { return width_; }

  // The element at flat index i, right-aligned to width().
  std::string format(int64_t i) const {
    std::string s;
    if (!values_.floating()) {
      s = values_.integer_text(i);
    } else {
      double v = values_.real(i);
      if (sci_mode_) {
        s = py_format(v, 'e', kPrecision);
      } else if (int_mode_) {
        s = py_format(v, 'f', 0);
        if (std::isfinite(v)) s += ".";  // "3." says "floating" without printing decimals
      } else {
        s = py_format(v, 'f', kPrecision);
      }
    }
    return s.size() < width_ ? std::string(width_ - s.size(), ' ') + s : s;
  }

 private:
  const HostValues& values_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  size_t width_ = 1;
};

struct Printer {
  const Shape& shape;
  const Strides& strides;
  const Formatter& formatter;
  bool summarize;

  // The innermost axis: elements joined by ", ", wrapped so a line stays within kLineWidth.
  std::string vector_str(int64_t base, int indent) const {
    const int64_t element_length = static_cast<int64_t>(formatter.width()) + 2;  // + ", "
    const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / element_length);
    std::vector<std::string> items;
    for (int64_t i : shown(shape.back(), summarize)) {
      items.push_back(i < 0 ? " ..." : formatter.format(base + i * strides.back()));
    }
    std::string out = "[";
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0 && k % per_line == 0) {
        out.append(",\n").append(indent + 1, ' ');
      } else if (k > 0) {
        out += ", ";
      }
      out += items[k];
    }
    return out + "]";
  }

  // Axis `axis` onwards, starting at flat index `base`; `indent` is the column of this level's '['.
  std::string tensor_str(size_t axis, int64_t base, int indent) const {
    if (axis + 1 == shape.size()) return vector_str(base, indent);
    // Rows of a matrix are separated by one newline, 2-D blocks by two, and so on.
    std::string separator = ",";
    separator.append(shape.size() - axis - 1, '\n').append(indent + 1, ' ');
    std::string out = "[";
    bool first = true;
    for (int64_t i : shown(shape[axis], summarize)) {
      if (!first) out += separator;
      first = false;
      out += i < 0 ? "..." : tensor_str(axis + 1, base + i * strides[axis], indent + 1);
    }
    return out + "]";
  }
};

// Appends ", suffix" to the printout, or starts a new line for it when the last line would pass
// kLineWidth (torch's _add_suffixes, including its count of the last line's length).
std::string add_suffixes(const std::string& body, const std::vector<std::string>& suffixes, int indent) {
  std::string out = body;
  size_t newline = body.rfind('\n');
  int64_t last_line_len = static_cast<int64_t>(body.size()) -
                          (newline == std::string::npos ? -1 : static_cast<int64_t>(newline)) + 1;
  for (const std::string& suffix : suffixes) {
    const auto len = static_cast<int64_t>(suffix.size());
    if (last_line_len + len + 2 > kLineWidth) {
      out.append(",\n").append(indent, ' ').append(suffix);
      last_line_len = indent + len;
    } else {
      out += ", " + suffix;
      last_line_len += len + 2;
    }
  }
  return out + ")";
}

std::string size_tuple(const Shape& shape) {  // Python's tuple repr: (0, 3), (0,)
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const int indent = static_cast<int>(prefix.size());

  std::vector<std::string> suffixes;
  if (!device().is_cpu()) suffixes.push_back("device='" + device().str() + "'");
  const bool default_dtype = dtype() == DType::Float32 || dtype() == DType::Int64 || dtype() == DType::Bool;

  std::string body;
  if (numel() == 0) {
    // Nothing to look at, so say the shape (unless it is plainly (0,)) and any dtype but float32.
    body = "[]";
    if (dim() != 1) suffixes.push_back("size=" + size_tuple(shape()));
    if (dtype() != DType::Float32) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
  } else {
    HostValues values{ops::contiguous(ops::to_device(detach(), Device::cpu()))};
    const Shape& shape = values.t.shape();
    const Strides& strides = values.t.strides();
    const bool summarize = numel() > kThreshold;
    std::vector<int64_t> indices;
    collect_shown(shape, strides, 0, 0, summarize, indices);
    Formatter formatter(values, indices);
    if (dim() == 0) {
      body = formatter.format(0);
    } else {
      body = Printer{shape, strides, formatter, summarize}.tensor_str(0, 0, indent);
    }
    if (!default_dtype) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
  }
  // torch prints grad_fn=<...> for a recorded result; this layer does not know autograd's node type,
  // so any tensor taking part in autograd shows requires_grad=True.
  if (requires_grad() || grad_fn()) suffixes.push_back("requires_grad=True");
  return add_suffixes(prefix + body, suffixes, indent);
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

}  // namespace glance
