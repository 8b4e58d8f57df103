#include "dist/gradient_reducer.h"

#include <chrono>
#include <stdexcept>

#include "tensor/ops.h"

namespace glance::dist {

namespace {
std::vector<int64_t> numels_of(const std::vector<Tensor>& params) {
  std::vector<int64_t> n;
  for (const Tensor& p : params) n.push_back(p.numel());
  return n;
}

struct Stopwatch {
  double& total;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  ~Stopwatch() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};
}  // namespace

GradientReducer::GradientReducer(std::vector<Tensor> parameters, BucketTransport& transport, int64_t cap)
    : params_(std::move(parameters)), transport_(transport), plan_(plan_buckets(numels_of(params_), cap)),
      readiness_(plan_) {
  for (size_t k = 0; k < params_.size(); ++k) {
    if (params_[k].dtype() != DType::Float32) {
      throw std::invalid_argument("GradientReducer: parameter " + std::to_string(k) + " is not float32");
    }
    index_of_[&params_[k].impl()] = k;
  }
  ready_.assign(plan_.buckets.size(), false);
  flat_.assign(plan_.buckets.size(), Tensor());
}

int64_t GradientReducer::bytes_per_step() const {
  int64_t e = 0;
  for (int64_t n : plan_.elements) e += n;
  return 4 * e;
}

autograd::GradReadyFn GradientReducer::hook() {
  readiness_.reset();
  ready_.assign(plan_.buckets.size(), false);
  next_to_start_ = 0;
  in_backward_ = true;
  return [this](TensorImpl& leaf) { on_ready(leaf); };
}

void GradientReducer::on_ready(TensorImpl& leaf) {
  auto it = index_of_.find(&leaf);
  if (it == index_of_.end()) return;  // a leaf that is not one of the parameters
  if (readiness_.mark(it->second)) {
    ready_[plan_.bucket_of[it->second]] = true;
    start_ready_buckets();
  }
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < plan_.buckets.size() && ready_[next_to_start_]) {
    start_bucket(next_to_start_++);
    if (in_backward_) ++started_in_backward_;
  }
}

void GradientReducer::start_bucket(size_t b) {
  Stopwatch watch{comm_seconds_};
  // The bucket's gradients as one float32 [elements]; a parameter no gradient reached counts as zeros.
  std::vector<Tensor> parts;
  for (size_t k : plan_.buckets[b]) {
    const Tensor g = params_[k].grad();
    parts.push_back(g.defined() ? ops::reshape(g, {params_[k].numel()})
                                : ops::zeros({params_[k].numel()}, DType::Float32, params_[k].device()));
  }
  flat_[b] = parts.size() == 1 ? ops::clone(parts[0]) : ops::concat(parts, 0);
  transport_.start(b, flat_[b]);
}

void GradientReducer::finish() {
  in_backward_ = false;
  // Buckets whose parameters the backward pass did not all reach start now, still in index order.
  for (size_t b = next_to_start_; b < plan_.buckets.size(); ++b) ready_[b] = true;
  start_ready_buckets();
  Stopwatch watch{comm_seconds_};
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    transport_.wait(b);
    int64_t offset = 0;
    for (size_t k : plan_.buckets[b]) {
      const int64_t n = params_[k].numel();
      params_[k].set_grad(ops::reshape(ops::narrow(flat_[b], 0, offset, n), params_[k].shape()));
      offset += n;
    }
    flat_[b] = Tensor();
  }
}

}  // namespace glance::dist
