#include "nn/attention/kernel.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include "autograd/functions.h"

namespace glance::nn {

namespace {
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout) {
  if (q.dim() != 3 || k.shape() != q.shape() || v.shape() != q.shape() || q.size(1) != layout.total_tokens()) {
    throw std::invalid_argument("attention: expected q, k, v of one shape [H, " + std::to_string(layout.total_tokens()) +
                                ", d], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                                shape_str(v.shape()));
  }
}
}  // namespace

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  std::vector<Tensor> outputs;
  for (int64_t b = 0; b < layout.batch_size(); ++b) {
    int64_t start = layout.clip_begin(b), n = layout.clip_tokens(b);
    if (n == 0) continue;
    Tensor qb = narrow(q, 1, start, n);  // [H, n, d]
    Tensor kb = narrow(k, 1, start, n);
    Tensor vb = narrow(v, 1, start, n);
    Tensor scores = matmul(qb, transpose(kb, 1, 2)) * scale;  // [H, n, n]: only this clip's pairs
    outputs.push_back(matmul(softmax(scores, -1), vb));        // [H, n, d]
  }
  if (outputs.empty()) return zeros_like(q);
  return outputs.size() == 1 ? outputs[0] : concat(outputs, 1);
}

namespace {
std::mutex g_mutex;
std::map<std::string, AttentionKernel>& registry() {
  static std::map<std::string, AttentionKernel> kernels{{"reference", reference_attention}};
  return kernels;
}
}  // namespace

void register_attention_kernel(const std::string& name, AttentionKernel kernel) {
  std::lock_guard<std::mutex> lock(g_mutex);
  registry()[name] = std::move(kernel);
}

AttentionKernel attention_kernel(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (auto& [n, _] : registry()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("attention_kernel: unknown kernel '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> attention_kernel_names() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<std::string> names;
  for (auto& [n, _] : registry()) names.push_back(n);
  return names;
}

}  // namespace glance::nn
