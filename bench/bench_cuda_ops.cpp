// The CUDA backend's primitives on the GPU: memory-bound ops as a fraction of the measured
// device-to-device copy bandwidth, matmul against cuBLAS called directly, and the fused kernels of
// cuda/fused.h against the compositions of glance ops they replace.
//
//   cmake -S . -B build -DGLANCE_CUDA=ON && cmake --build build -j --target bench_cuda_ops
//   ./build/bench/bench_cuda_ops [--reps 20] [--log2 26] [--only ops|gemm|fused] [--no-check] > cuda_ops.jsonl
//
// One JSON object per line on stdout (progress and check messages go to stderr), with the keys of the
// other benches: bench, case, glance, reference, unit, ratio (> 1 or, for bandwidth, close to 1 is good).
//
//   {"bench":"cuda_device", ...}            the GPU: name, multiprocessors, L2, memory, runtime and driver
//   {"bench":"cuda_copy", ...}              the reference: cudaMemcpy device to device of 2^log2 floats,
//                                           GB/s = (bytes read + bytes written) / time
//   {"bench":"cuda_ops","case":"add", ...}  a glance op through the public tensor API on Device::cuda():
//                                           glance = its GB/s, counting the fewest bytes the op must move
//                                           (each input read once, each output written once; "bytes"),
//                                           reference = the copy's GB/s, ratio = glance / reference
//                                           (target: >= 0.7)
//   {"bench":"cuda_gemm", ...}              ops::matmul vs cuBLAS on the same device buffers: TFLOP/s =
//                                           2 batch M N K / time; ratio = glance / cuBLAS. "math": fp32 or
//                                           tf32 (glance's set_allow_tf32 vs CUBLAS_COMPUTE_32F_FAST_TF32).
//                                           Checked once: max |glance - cuBLAS| and each one's relative
//                                           error ||x - ref|| / ||ref|| against a float64 product.
//   {"bench":"cuda_fused", ...}             a fused kernel vs the unfused glance ops: glance = fused ms,
//                                           reference = unfused ms, ratio = unfused / fused (the speed-up);
//                                           fused_gbps / fraction_of_copy as for cuda_ops.
//
// Every op is checked once before it is timed: cuda_ops against the CPU backend on copies of the inputs
// ("max_err" = max |gpu - cpu| / max(1, max |cpu|)), fused against unfused. A failed check prints
// "check":"FAILED" in its line and makes the exit status 1 (the timings still run).
//
// Timing: CUDA events on the legacy default stream (the one glance uses) around one call; 3 warm-up calls,
// then the median of --reps calls. Inputs smaller than twice the L2 cache are evicted from it before each
// timed call (a cudaMemset of a 2 x L2 buffer, outside the events), so no case is timed from the cache.
// The default size, 2^26 floats (256 MiB per tensor), is far above any L2: bandwidth-bound. Inputs are
// uniform random numbers drawn on the device (never zeros).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_query.h"
#include "cuda/fused.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace glance;

namespace {

void ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}
void ok(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(status)));
  }
}

// A JSON object written key by key (numbers as %.6g, strings escaped minimally).
class Json {
 public:
  Json& str(const std::string& key, const std::string& value) {
    std::string v;
    for (char c : value) {
      if (c == '"' || c == '\\') v += '\\';
      v += c;
    }
    return raw(key, "\"" + v + "\"");
  }
  Json& num(const std::string& key, double value) {
    if (!std::isfinite(value)) return raw(key, "null");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    return raw(key, buf);
  }
  Json& integer(const std::string& key, int64_t value) { return raw(key, std::to_string(value)); }
  void print() const {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

 private:
  Json& raw(const std::string& key, const std::string& value) {
    if (!body_.empty()) body_ += ",";
    body_ += "\"" + key + "\":" + value;
    return *this;
  }
  std::string body_;
};

std::string shape_of(const Tensor& t) { return shape_str(t.shape()); }

Device gpu() { return Device::cuda(0); }
Tensor to_cpu(const Tensor& t) { return ops::to_device(t, Device::cpu()); }

// Uniform [low, high) float32 values drawn on the device (the backend's Philox fill).
Tensor uniform_gpu(const Shape& shape, double low, double high, uint64_t seed, DType dtype = DType::Float32) {
  Tensor t = Tensor::empty(shape, dtype, gpu());
  cuda::backend_instance()->random(RandomKind::Uniform, t, low, high, PhiloxState{seed, 0});
  return t;
}

// max |actual - expected| / max(1, max |expected|), on the CPU, in float64.
double max_err(const Tensor& actual, const Tensor& expected) {
  Tensor a = ops::to_dtype(to_cpu(actual), DType::Float64), e = ops::to_dtype(to_cpu(expected), DType::Float64);
  if (a.shape() != e.shape()) {
    throw std::runtime_error("check: shapes differ, " + shape_of(a) + " vs " + shape_of(e));
  }
  const double diff = ops::max(ops::unary(UnaryOp::Abs, ops::binary(BinaryOp::Sub, a, e))).item();
  const double scale = std::max(1.0, ops::max(ops::unary(UnaryOp::Abs, e)).item());
  return diff / scale;  // NaN when either holds a NaN
}

// ||x - ref|| / ||ref|| in float64 on the device.
double rel_err(const Tensor& x, const Tensor& ref) {
  Tensor d = ops::binary(BinaryOp::Sub, ops::to_dtype(x, DType::Float64), ref);
  const double num = to_cpu(ops::sum(ops::binary(BinaryOp::Mul, d, d))).item();
  const double den = to_cpu(ops::sum(ops::binary(BinaryOp::Mul, ref, ref))).item();
  return std::sqrt(num / den);
}

std::string device_name_str() {
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  return prop.name;
}

// Median milliseconds of f() over `reps` calls after 3 warm-ups, each call between two CUDA events on the
// default stream. With `flush`, the L2 cache is overwritten before each timed call (outside the events).
class Timer {
 public:
  explicit Timer(int reps) : reps_(reps) {
    cudaDeviceProp prop{};
    ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    l2_bytes_ = static_cast<size_t>(prop.l2CacheSize);
    flush_bytes_ = std::max<size_t>(2 * l2_bytes_, size_t(64) << 20);
    ok(cudaMalloc(&flush_, flush_bytes_), "cudaMalloc (L2 flush buffer)");
    ok(cudaEventCreate(&start_), "cudaEventCreate");
    ok(cudaEventCreate(&stop_), "cudaEventCreate");
  }
  ~Timer() {
    cudaFree(flush_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  size_t l2_bytes() const { return l2_bytes_; }
  // Whether a working set of `bytes` could be served from the L2 cache (then each timed call is preceded
  // by a flush).
  bool needs_flush(double bytes) const { return bytes < 2.0 * static_cast<double>(l2_bytes_); }

  double median_ms(const std::function<void()>& f, bool flush) {
    for (int i = 0; i < 3; ++i) f();
    ok(cudaDeviceSynchronize(), "warm-up");
    std::vector<double> ms;
    for (int i = 0; i < reps_; ++i) {
      if (flush) ok(cudaMemsetAsync(flush_, i & 0xff, flush_bytes_, 0), "L2 flush");
      ok(cudaEventRecord(start_, 0), "cudaEventRecord");
      f();
      ok(cudaEventRecord(stop_, 0), "cudaEventRecord");
      ok(cudaEventSynchronize(stop_), "cudaEventSynchronize");
      float t = 0;
      ok(cudaEventElapsedTime(&t, start_, stop_), "cudaEventElapsedTime");
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

 private:
  int reps_;
  size_t l2_bytes_ = 0, flush_bytes_ = 0;
  void* flush_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

struct Options {
  int reps = 20;
  int log2 = 26;
  std::string only;  // "", "ops", "gemm", "fused"
  bool check = true;
};

struct State {
  Options opt;
  std::string device;
  double copy_gbps = 0;
  int failed_checks = 0;
};

// Marks a check as passed or failed (NaN fails) and says so on stderr.
const char* verdict(State& s, const std::string& what, double err, double tol) {
  const bool good = err <= tol;  // false for NaN
  if (!good) {
    ++s.failed_checks;
    std::fprintf(stderr, "CHECK FAILED: %s: error %.3g > tolerance %.3g\n", what.c_str(), err, tol);
  }
  return good ? "ok" : "FAILED";
}

// Runs one case. An exception (an op refusing a shape, a CUDA error) becomes an "error" line and a failed
// check, and the next case still runs (after a sticky CUDA error such as an illegal address, they all fail).
void guarded(State& s, const char* bench, const std::string& name, const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    ++s.failed_checks;
    std::fprintf(stderr, "ERROR in %s %s: %s\n", bench, name.c_str(), e.what());
    Json().str("bench", bench).str("case", name).str("error", e.what()).str("check", "FAILED").str("device", s.device).print();
  }
}

void print_device() {
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  Json()
      .str("bench", "cuda_device")
      .str("device", prop.name)
      .str("compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor))
      .integer("multiprocessors", prop.multiProcessorCount)
      .integer("l2_bytes", prop.l2CacheSize)
      .integer("global_memory_bytes", static_cast<int64_t>(prop.totalGlobalMem))
      .integer("memory_bus_bits", prop.memoryBusWidth)
      .integer("cuda_runtime", runtime)
      .integer("cuda_driver", driver)
      .print();
}

// ---- the reference: cudaMemcpy device to device ----------------------------------------------------------

void bench_copy(State& s, Timer& timer) {
  const int64_t n = int64_t(1) << s.opt.log2;
  Tensor src = uniform_gpu({n}, -2, 2, 1), dst = Tensor::empty({n}, DType::Float32, gpu());
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  const double ms = timer.median_ms(
      [&] { ok(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToDevice, 0), "cudaMemcpyAsync"); },
      false);
  s.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
  Json()
      .str("bench", "cuda_copy")
      .str("case", "cudaMemcpy_d2d")
      .str("shape", shape_of(src))
      .num("reference", s.copy_gbps)
      .str("unit", "GB/s")
      .num("ms", ms)
      .num("bytes", 2.0 * bytes)
      .str("bytes_counted", "read + written")
      .integer("reps", s.opt.reps)
      .str("device", s.device)
      .print();
}

// ---- memory-bound glance ops -----------------------------------------------------------------------------

struct OpCase {
  std::string name;
  std::string shape;                // the main input's shape, for the reader
  double bytes;                     // the fewest bytes the op must move
  std::function<Tensor()> gpu;      // the op on the device inputs; its result
  std::function<Tensor()> cpu;      // the same op by the CPU backend on copies of the inputs
  double tol = 1e-5;                // on max_err
};

void run_op_unguarded(State& s, Timer& timer, const OpCase& c) {
  std::fprintf(stderr, "cuda_ops: %s %s\n", c.name.c_str(), c.shape.c_str());
  double err = NAN;
  const char* check = "skipped";
  if (s.opt.check) {
    Tensor actual = c.gpu();
    err = max_err(actual, c.cpu());
    check = verdict(s, c.name, err, c.tol);
  }
  const double ms = timer.median_ms([&] { Tensor r = c.gpu(); }, timer.needs_flush(c.bytes));
  const double gbps = c.bytes / (ms * 1e-3) / 1e9;
  Json()
      .str("bench", "cuda_ops")
      .str("case", c.name)
      .str("shape", c.shape)
      .str("dtype", "f32")
      .num("glance", gbps)
      .num("reference", s.copy_gbps)
      .str("unit", "GB/s")
      .num("ratio", gbps / s.copy_gbps)
      .num("target", 0.7)
      .num("ms", ms)
      .num("bytes", c.bytes)
      .str("reference_impl", "cudaMemcpy d2d")
      .num("max_err", err)
      .str("check", check)
      .integer("reps", s.opt.reps)
      .str("device", s.device)
      .print();
}

void run_op(State& s, Timer& timer, const OpCase& c) {
  guarded(s, "cuda_ops", c.name, [&] { run_op_unguarded(s, timer, c); });
}

void bench_ops(State& s, Timer& timer) {
  const int64_t E = int64_t(1) << s.opt.log2;  // elements per large tensor
  const double f = sizeof(float);
  uint64_t seed = 100;

  // fill (in place)
  {
    Tensor out = Tensor::empty({E}, DType::Float32, gpu());
    run_op(s, timer, {"fill", shape_of(out), E * f,
                      [=] { ops::fill_(out, 0.5); return out; },
                      [=] { return ops::full({E}, 0.5); }});
  }
  // copies: a contiguous clone (should run at the copy's speed) and a transposed view made contiguous
  {
    Tensor x = uniform_gpu({E}, -2, 2, ++seed);
    run_op(s, timer, {"clone_contiguous", shape_of(x), 2 * E * f, [=] { return ops::clone(x); },
                      [=] { return to_cpu(x); }});
  }
  {
    const int64_t side = int64_t(1) << (s.opt.log2 / 2);
    const int64_t other = E / side;
    Tensor x = uniform_gpu({side, other}, -2, 2, ++seed);
    run_op(s, timer, {"copy_transposed", shape_of(x) + " transposed", 2.0 * side * other * f,
                      [=] { return ops::contiguous(ops::transpose(x, 0, 1)); },
                      [=] { return ops::contiguous(ops::transpose(to_cpu(x), 0, 1)); }});
  }
  // binary ops, same shape
  {
    Tensor a = uniform_gpu({E}, -2, 2, ++seed), b = uniform_gpu({E}, -2, 2, ++seed);
    run_op(s, timer, {"add", shape_of(a), 3 * E * f, [=] { return ops::binary(BinaryOp::Add, a, b); },
                      [=] { return ops::binary(BinaryOp::Add, to_cpu(a), to_cpu(b)); }});
    run_op(s, timer, {"mul", shape_of(a), 3 * E * f, [=] { return ops::binary(BinaryOp::Mul, a, b); },
                      [=] { return ops::binary(BinaryOp::Mul, to_cpu(a), to_cpu(b)); }});
  }
  // broadcast add of a row vector: [rows, 1024] + [1024]
  {
    const int64_t C = 1024, R = E / C;
    Tensor x = uniform_gpu({R, C}, -2, 2, ++seed), row = uniform_gpu({C}, -2, 2, ++seed);
    run_op(s, timer, {"add_row_broadcast", shape_of(x) + " + " + shape_of(row), (2.0 * R * C + C) * f,
                      [=] { return ops::binary(BinaryOp::Add, x, row); },
                      [=] { return ops::binary(BinaryOp::Add, to_cpu(x), to_cpu(row)); }});
  }
  // unary ops
  {
    Tensor x = uniform_gpu({E}, -4, 4, ++seed);
    run_op(s, timer, {"gelu_erf", shape_of(x), 2 * E * f, [=] { return ops::unary(UnaryOp::GeluErf, x); },
                      [=] { return ops::unary(UnaryOp::GeluErf, to_cpu(x)); }});
    run_op(s, timer, {"exp", shape_of(x), 2 * E * f, [=] { return ops::unary(UnaryOp::Exp, x); },
                      [=] { return ops::unary(UnaryOp::Exp, to_cpu(x)); }});
  }
  // reductions
  for (int64_t C : {int64_t(4096), int64_t(192)}) {
    const int64_t R = E / C;
    Tensor x = uniform_gpu({R, C}, -2, 2, ++seed);
    run_op(s, timer, {"sum_last_axis_c" + std::to_string(C), shape_of(x), (double(R) * C + R) * f,
                      [=] { return ops::sum(x, {1}); }, [=] { return ops::sum(to_cpu(x), {1}); }});
  }
  {
    Tensor x = uniform_gpu({E}, -2, 2, ++seed);
    run_op(s, timer, {"sum_all", shape_of(x), (E + 1) * f, [=] { return ops::sum(x); },
                      [=] { return ops::sum(to_cpu(x)); }});
  }
  {
    const int64_t C = 16384, R = E / C;
    Tensor x = uniform_gpu({R, C}, -2, 2, ++seed);
    run_op(s, timer, {"max_axis0", shape_of(x), (double(R) * C + C) * f, [=] { return ops::max(x, {0}); },
                      [=] { return ops::max(to_cpu(x), {0}); }});
  }
  // rows: softmax at attention-row lengths (392 = the small model's clip, 1568 = ViT-B's), layer norm at
  // the model widths (192 small, 768 ViT-B); as many rows as make 2^log2 elements.
  for (int64_t C : {int64_t(392), int64_t(1568)}) {
    const int64_t R = E / C;
    Tensor x = uniform_gpu({R, C}, -8, 8, ++seed);
    run_op(s, timer, {"softmax_rows_c" + std::to_string(C), shape_of(x), 2.0 * R * C * f,
                      [=] { return ops::softmax(x, -1); }, [=] { return ops::softmax(to_cpu(x), -1); }});
  }
  for (int64_t C : {int64_t(192), int64_t(768)}) {
    const int64_t R = E / C;
    Tensor x = uniform_gpu({R, C}, -2, 2, ++seed), w = uniform_gpu({C}, 0.5, 1.5, ++seed),
           b = uniform_gpu({C}, -1, 1, ++seed);
    // reads x, w, b; writes out, mean, rstd
    run_op(s, timer, {"layer_norm_rows_c" + std::to_string(C), shape_of(x), (2.0 * R * C + 2.0 * C + 2.0 * R) * f,
                      [=] { return ops::layer_norm(x, w, b, 1e-6).out; },
                      [=] { return ops::layer_norm(to_cpu(x), to_cpu(w), to_cpu(b), 1e-6).out; }, 1e-4});
  }
}

// ---- GEMM: ops::matmul vs cuBLAS -------------------------------------------------------------------------

struct GemmCase {
  std::string name;
  int64_t batch, M, N, K;
  bool a_transposed;  // a is a transposed view of a stored [batch, K, M] (a weight gradient's dY^T)
  bool b_transposed;  // b is a transposed view of a stored [batch, N, K] (nn::Linear's x W^T)
};

// C = op(A) op(B) row-major, through cuBLAS's column-major interface: C^T = op(B)^T op(A)^T, i.e. the
// operands swapped (cuda/matmul.cu, docs/08 "the column-major trick"). A, B are the stored buffers.
void cublas_gemm(cublasHandle_t h, const GemmCase& c, bool tf32, const float* A, const float* B, float* C) {
  const float alpha = 1.f, beta = 0.f;
  const int m = static_cast<int>(c.N), n = static_cast<int>(c.M), k = static_cast<int>(c.K);
  const cublasOperation_t opb = c.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = c.a_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = static_cast<int>(c.b_transposed ? c.K : c.N);
  const int lda = static_cast<int>(c.a_transposed ? c.M : c.K);
  const int ldc = static_cast<int>(c.N);
  const long long sa = c.M * c.K, sb = c.K * c.N, sc = c.M * c.N;
  if (!tf32) {
    if (c.batch == 1) {
      ok(cublasSgemm(h, opb, opa, m, n, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasSgemm");
    } else {
      ok(cublasSgemmStridedBatched(h, opb, opa, m, n, k, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc, sc,
                                   static_cast<int>(c.batch)),
         "cublasSgemmStridedBatched");
    }
  } else {
    if (c.batch == 1) {
      ok(cublasGemmEx(h, opb, opa, m, n, k, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F,
                      ldc, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
         "cublasGemmEx");
    } else {
      ok(cublasGemmStridedBatchedEx(h, opb, opa, m, n, k, &alpha, B, CUDA_R_32F, ldb, sb, A, CUDA_R_32F, lda, sa,
                                    &beta, C, CUDA_R_32F, ldc, sc, static_cast<int>(c.batch),
                                    CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
         "cublasGemmStridedBatchedEx");
    }
  }
}

void bench_gemm(State& s, Timer& timer) {
  cublasHandle_t h = nullptr;
  ok(cublasCreate(&h), "cublasCreate");
  ok(cublasSetStream(h, 0), "cublasSetStream");
  // The shapes of the RLT models: "small" (dim 192, 8 clips x 392 tokens = 3136, 3 heads of 64) and ViT-B
  // "base" (dim 768, 8 clips x 1568 = 12544 tokens, 12 heads of 64), plus one square product.
  const std::vector<GemmCase> cases = {
      {"small_qkv_x_Wt", 1, 3136, 576, 192, false, true},
      {"small_fc1_x_Wt", 1, 3136, 768, 192, false, true},
      {"small_fc2_x_Wt", 1, 3136, 192, 768, false, true},
      {"small_qkv_dW_dYt_x", 1, 576, 192, 3136, true, false},
      {"small_scores_q_kt", 24, 392, 392, 64, false, true},
      {"small_probs_v", 24, 392, 64, 392, false, false},
      {"square_4096", 1, 4096, 4096, 4096, false, false},
      {"base_qkv_x_Wt", 1, 12544, 2304, 768, false, true},
      {"base_fc1_x_Wt", 1, 12544, 3072, 768, false, true},
      {"base_scores_q_kt", 96, 1568, 1568, 64, false, true},
      {"base_probs_v", 96, 1568, 64, 1568, false, false},
  };
  uint64_t seed = 1000;
  for (const GemmCase& c : cases) guarded(s, "cuda_gemm", c.name, [&] {
    // Stored operands, and the views glance multiplies.
    const Shape a_store = c.a_transposed ? Shape{c.batch, c.K, c.M} : Shape{c.batch, c.M, c.K};
    const Shape b_store = c.b_transposed ? Shape{c.batch, c.N, c.K} : Shape{c.batch, c.K, c.N};
    Tensor A = uniform_gpu(a_store, -1, 1, ++seed), B = uniform_gpu(b_store, -1, 1, ++seed);
    Tensor a = c.a_transposed ? ops::transpose(A, 1, 2) : A, b = c.b_transposed ? ops::transpose(B, 1, 2) : B;
    if (c.batch == 1) a = ops::select(a, 0, 0), b = ops::select(b, 0, 0);
    Tensor C = Tensor::empty(c.batch == 1 ? Shape{c.M, c.N} : Shape{c.batch, c.M, c.N}, DType::Float32, gpu());
    const double flop = 2.0 * c.batch * c.M * c.N * c.K;
    const double bytes = 4.0 * (A.numel() + B.numel() + C.numel());
    Tensor ref;  // float64 product, made once per shape
    for (bool tf32 : {false, true}) {
      std::fprintf(stderr, "cuda_gemm: %s %s\n", c.name.c_str(), tf32 ? "tf32" : "fp32");
      cuda::set_allow_tf32(tf32);
      auto run_glance = [&] { Tensor r = ops::matmul(a, b); };
      auto run_cublas = [&] {
        cublas_gemm(h, c, tf32, static_cast<const float*>(A.raw_data()), static_cast<const float*>(B.raw_data()),
                    static_cast<float*>(C.raw_data()));
      };
      double diff = NAN, err_glance = NAN, err_cublas = NAN;
      const char* check = "skipped";
      if (s.opt.check) {
        Tensor g = ops::matmul(a, b);
        run_cublas();
        ok(cudaDeviceSynchronize(), "gemm check");
        diff = to_cpu(ops::max(ops::unary(UnaryOp::Abs, ops::binary(BinaryOp::Sub, g, C)))).item();
        if (!ref.defined()) {
          cuda::set_allow_tf32(false);
          ref = ops::matmul(ops::to_dtype(a, DType::Float64), ops::to_dtype(b, DType::Float64));
          cuda::set_allow_tf32(tf32);
        }
        err_glance = rel_err(g, ref);
        err_cublas = rel_err(C, ref);
        // float32: near 1e-6 for these K (rounding grows like sqrt(K) * 6e-8); TF32 (inputs rounded to 10
        // mantissa bits): a few 1e-4 (about 3e-4 is usual for TF32 GEMMs). glance calls cuBLAS, so it should land where cuBLAS does.
        const double tol = tf32 ? 2e-3 : 2e-5;
        check = verdict(s, c.name + (tf32 ? " tf32" : " fp32"), err_glance, tol);
      }
      const bool flush = timer.needs_flush(bytes);
      // Two alternating rounds each, medians of all calls: glance, cuBLAS, glance, cuBLAS.
      double g1 = timer.median_ms(run_glance, flush), r1 = timer.median_ms(run_cublas, flush);
      double g2 = timer.median_ms(run_glance, flush), r2 = timer.median_ms(run_cublas, flush);
      const double gms = std::min(g1, g2), rms = std::min(r1, r2);
      const double gt = flop / (gms * 1e-3) / 1e12, rt = flop / (rms * 1e-3) / 1e12;
      std::ostringstream shape;
      shape << (c.batch > 1 ? std::to_string(c.batch) + "x" : "") << "[" << c.M << "," << c.K << "]"
            << (c.a_transposed ? "(A stored transposed)" : "") << " x [" << c.K << "," << c.N << "]"
            << (c.b_transposed ? "(B stored transposed)" : "");
      Json()
          .str("bench", "cuda_gemm")
          .str("case", c.name + (tf32 ? "_tf32" : "_fp32"))
          .str("shape", shape.str())
          .str("math", tf32 ? "tf32" : "fp32")
          .num("glance", gt)
          .num("reference", rt)
          .str("unit", "TFLOP/s")
          .num("ratio", gt / rt)
          .num("glance_ms", gms)
          .num("reference_ms", rms)
          .num("glance_ms_rounds_spread", std::fabs(g1 - g2))
          .str("reference_impl", c.batch > 1 ? (tf32 ? "cublasGemmStridedBatchedEx TF32" : "cublasSgemmStridedBatched")
                                             : (tf32 ? "cublasGemmEx TF32" : "cublasSgemm"))
          .num("max_abs_diff_vs_cublas", diff)
          .num("rel_err_glance_vs_f64", err_glance)
          .num("rel_err_cublas_vs_f64", err_cublas)
          .str("check", check)
          .integer("l2_flushed", flush ? 1 : 0)
          .integer("reps", s.opt.reps)
          .str("device", s.device)
          .print();
    }
    cuda::set_allow_tf32(false);
  });
  cuda::set_allow_tf32(false);
  cublasDestroy(h);
}

// ---- fused kernels vs their unfused compositions ---------------------------------------------------------

void report_fused(State& s, const std::string& name, const std::string& shape, double bytes, double fused_ms,
                  double unfused_ms, double err, const char* check, const std::string& unfused) {
  const double gbps = bytes / (fused_ms * 1e-3) / 1e9;
  Json()
      .str("bench", "cuda_fused")
      .str("case", name)
      .str("shape", shape)
      .str("dtype", "f32")
      .num("glance", fused_ms)
      .num("reference", unfused_ms)
      .str("unit", "ms")
      .num("ratio", unfused_ms / fused_ms)
      .str("reference_impl", "unfused glance ops: " + unfused)
      .num("fused_bytes", bytes)
      .num("fused_gbps", gbps)
      .num("fraction_of_copy", gbps / s.copy_gbps)
      .num("max_err", err)
      .str("check", check)
      .integer("reps", s.opt.reps)
      .str("device", s.device)
      .print();
}

void bench_fused(State& s, Timer& timer) {
  const int64_t E = int64_t(1) << s.opt.log2;
  const double f = sizeof(float);
  uint64_t seed = 5000;
  const int64_t C = 768, R = E / C;  // ViT-B's MLP / residual width
  const bool flush = timer.needs_flush(2.0 * R * C * f);

  guarded(s, "cuda_fused", "bias_gelu", [&] {  // bias + GELU (the MLP's fc1 epilogue)
    std::fprintf(stderr, "cuda_fused: bias_gelu\n");
    Tensor x = uniform_gpu({R, C}, -4, 4, ++seed), b = uniform_gpu({C}, -1, 1, ++seed);
    auto fused = [=] { return cuda::bias_gelu(x, b); };
    auto unfused = [=] { return ops::unary(UnaryOp::GeluErf, ops::binary(BinaryOp::Add, x, b)); };
    double err = NAN;
    const char* check = "skipped";
    if (s.opt.check) err = max_err(fused(), unfused()), check = verdict(s, "bias_gelu", err, 1e-5);
    const double fm = timer.median_ms([&] { Tensor r = fused(); }, flush);
    const double um = timer.median_ms([&] { Tensor r = unfused(); }, flush);
    report_fused(s, "bias_gelu", shape_of(x) + " + " + shape_of(b), (2.0 * R * C + C) * f, fm, um, err, check,
                 "gelu(add(x, b))");
  });
  guarded(s, "cuda_fused", "bias_gelu_backward", [&] {  // its backward
    std::fprintf(stderr, "cuda_fused: bias_gelu_backward\n");
    Tensor dy = uniform_gpu({R, C}, -1, 1, ++seed), x = uniform_gpu({R, C}, -4, 4, ++seed),
           b = uniform_gpu({C}, -1, 1, ++seed);
    auto fused = [=] { return cuda::bias_gelu_backward(dy, x, b); };
    auto unfused = [=] { return ops::binary(BinaryOp::GeluErfGrad, dy, ops::binary(BinaryOp::Add, x, b)); };
    double err = NAN;
    const char* check = "skipped";
    if (s.opt.check) err = max_err(fused(), unfused()), check = verdict(s, "bias_gelu_backward", err, 1e-5);
    const double fm = timer.median_ms([&] { Tensor r = fused(); }, flush);
    const double um = timer.median_ms([&] { Tensor r = unfused(); }, flush);
    report_fused(s, "bias_gelu_backward", shape_of(x), (3.0 * R * C + C) * f, fm, um, err, check,
                 "gelu_erf_grad(dy, add(x, b))");
  });
  guarded(s, "cuda_fused", "residual_layer_norm", [&] {  // residual add + LayerNorm
    std::fprintf(stderr, "cuda_fused: residual_layer_norm\n");
    Tensor x = uniform_gpu({R, C}, -2, 2, ++seed), r = uniform_gpu({R, C}, -2, 2, ++seed),
           w = uniform_gpu({C}, 0.5, 1.5, ++seed), b = uniform_gpu({C}, -1, 1, ++seed);
    auto fused = [=] { return cuda::residual_layer_norm(x, r, w, b, 1e-6).out; };
    auto unfused = [=] { return ops::layer_norm(ops::binary(BinaryOp::Add, x, r), w, b, 1e-6).out; };
    double err = NAN;
    const char* check = "skipped";
    if (s.opt.check) err = max_err(fused(), unfused()), check = verdict(s, "residual_layer_norm", err, 1e-4);
    const double fm = timer.median_ms([&] { Tensor o = fused(); }, flush);
    const double um = timer.median_ms([&] { Tensor o = unfused(); }, flush);
    // reads x, r, w, b; writes out, sum, mean, rstd
    report_fused(s, "residual_layer_norm", shape_of(x), (4.0 * R * C + 2.0 * C + 2.0 * R) * f, fm, um, err, check,
                 "layer_norm(add(x, r)) (also keeps the sum, as the fused kernel does)");
  });
  guarded(s, "cuda_fused", "softmax_cross_entropy", [&] {  // softmax + cross-entropy, loss and dlogits (1000 classes)
    std::fprintf(stderr, "cuda_fused: softmax_cross_entropy\n");
    const int64_t K = 1000, N = E / K;
    Tensor logits = uniform_gpu({N, K}, -6, 6, ++seed);
    Generator gen(++seed);
    Tensor labels = ops::to_device(ops::randint(0, K, {N}, &gen), gpu());
    Tensor labels_col = ops::reshape(labels, {N, 1});
    Tensor ones_col = ops::ones({N, 1}, DType::Float32, gpu());
    auto fused = [=] {
      cuda::SoftmaxCrossEntropyResult r = cuda::softmax_cross_entropy(logits, labels);
      return std::make_pair(r.loss, r.dlogits);
    };
    // What the unfused graph computes: loss = -gather(log_softmax(logits), labels); dlogits = softmax - onehot.
    auto unfused = [=] {
      Tensor logp = ops::log_softmax(logits, 1);
      Tensor loss = ops::unary(UnaryOp::Neg, ops::reshape(ops::gather(logp, 1, labels_col), {N}));
      Tensor onehot = ops::scatter_add(ops::zeros({N, K}, DType::Float32, gpu()), 1, labels_col, ones_col);
      Tensor dlogits = ops::binary(BinaryOp::Sub, ops::softmax(logits, 1), onehot);
      return std::make_pair(loss, dlogits);
    };
    double err = NAN;
    const char* check = "skipped";
    if (s.opt.check) {
      auto a = fused();
      auto e = unfused();
      err = std::max(max_err(a.first, e.first), max_err(a.second, e.second));
      check = verdict(s, "softmax_cross_entropy", err, 1e-4);
    }
    const double fm = timer.median_ms([&] { auto r = fused(); }, flush);
    const double um = timer.median_ms([&] { auto r = unfused(); }, flush);
    // reads logits and labels; writes dlogits and the per-row loss
    report_fused(s, "softmax_cross_entropy", shape_of(logits), 2.0 * N * K * f + N * (8.0 + f), fm, um, err, check,
                 "neg(gather(log_softmax)), softmax - scatter_add(onehot)");
  });
  guarded(s, "cuda_fused", "adamw_step", [&] {  // one AdamW step on one parameter tensor of 2^(log2-2) floats
    std::fprintf(stderr, "cuda_fused: adamw_step\n");
    const int64_t P = E / 4;
    Tensor p0 = uniform_gpu({P}, -1, 1, ++seed), g = uniform_gpu({P}, -1, 1, ++seed);
    Tensor m0 = uniform_gpu({P}, -0.1, 0.1, ++seed), v0 = uniform_gpu({P}, 0, 0.01, ++seed);
    cuda::AdamWParams hp;
    hp.lr = 1e-3, hp.weight_decay = 0.05, hp.step = 10;
    // nn/optim/adamw.cpp's sequence, on glance ops.
    auto unfused = [&hp, g](const Tensor& p, const Tensor& m, const Tensor& v) {
      const double c1 = 1.0 - std::pow(hp.beta1, double(hp.step)), c2 = 1.0 - std::pow(hp.beta2, double(hp.step));
      ops::copy_(p, ops::binary(BinaryOp::Mul, p, 1.0 - hp.lr * hp.weight_decay));
      ops::copy_(m, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, m, hp.beta1),
                                ops::binary(BinaryOp::Mul, g, 1.0 - hp.beta1)));
      ops::copy_(v, ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Mul, v, hp.beta2),
                                ops::binary(BinaryOp::Mul, ops::binary(BinaryOp::Mul, g, g), 1.0 - hp.beta2)));
      Tensor denom = ops::binary(BinaryOp::Add, ops::unary(UnaryOp::Sqrt, ops::binary(BinaryOp::Div, v, c2)), hp.eps);
      ops::add_(p, ops::binary(BinaryOp::Div, m, denom), -hp.lr / c1);
    };
    double err = NAN;
    const char* check = "skipped";
    if (s.opt.check) {
      Tensor pf = ops::clone(p0), mf = ops::clone(m0), vf = ops::clone(v0);
      Tensor pu = ops::clone(p0), mu = ops::clone(m0), vu = ops::clone(v0);
      cuda::adamw_step(pf, g, mf, vf, hp);
      unfused(pu, mu, vu);
      err = std::max({max_err(pf, pu), max_err(mf, mu), max_err(vf, vu)});
      check = verdict(s, "adamw_step", err, 1e-5);
    }
    Tensor p = ops::clone(p0), m = ops::clone(m0), v = ops::clone(v0);
    const bool flush_p = timer.needs_flush(7.0 * P * f);
    const double fm = timer.median_ms([&] { cuda::adamw_step(p, g, m, v, hp); }, flush_p);
    const double um = timer.median_ms([&] { unfused(p, m, v); }, flush_p);
    // reads p, g, m, v; writes p, m, v
    report_fused(s, "adamw_step", shape_of(p), 7.0 * P * f, fm, um, err, check,
                 "the ~12 ops of nn/optim/adamw.cpp (mul, add, sqrt, div, copy_, add_)");
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) opt.reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--log2" && i + 1 < argc) opt.log2 = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) opt.only = argv[++i];
    else if (a == "--no-check") opt.check = false;
    else {
      std::fprintf(stderr,
                   "usage: bench_cuda_ops [--reps R] [--log2 L] [--only ops|gemm|fused] [--no-check]\n"
                   "  --log2 L: 2^L float32 elements per large tensor (default 26 = 256 MiB)\n");
      return 2;
    }
  }
  if (opt.log2 < 16 || opt.log2 > 30) {
    std::fprintf(stderr, "bench_cuda_ops: --log2 must be in [16, 30]\n");
    return 2;
  }
  if (!opt.only.empty() && opt.only != "ops" && opt.only != "gemm" && opt.only != "fused") {
    std::fprintf(stderr, "bench_cuda_ops: --only takes ops, gemm or fused\n");
    return 2;
  }
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_cuda_ops: no CUDA device\n");
    return 1;
  }
  State s;
  s.opt = opt;
  try {
    s.device = device_name_str();
    print_device();
    Timer timer(opt.reps);
    bench_copy(s, timer);  // every run measures its reference first
    if (opt.only.empty() || opt.only == "ops") bench_ops(s, timer);
    if (opt.only.empty() || opt.only == "gemm") bench_gemm(s, timer);
    if (opt.only.empty() || opt.only == "fused") bench_fused(s, timer);
    std::fprintf(stderr, "bench_cuda_ops: done; %s\n", cuda::to_string(cuda::allocator_stats()).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_ops: %s\n", e.what());
    return 1;
  }
  if (s.failed_checks > 0) {
    std::fprintf(stderr, "bench_cuda_ops: %d check(s) FAILED\n", s.failed_checks);
    return 1;
  }
  return 0;
}
