#include "tests/reference/cross_entropy.hpp"

#include <algorithm>
#include <cmath>

namespace vkm::ref {

namespace {

double weight(const std::vector<int32_t>& targets, const Vec& mask, int64_t V, size_t r) {
  return targets[r] >= 0 && targets[r] < V ? mask[r] : 0.0;
}

double count(const std::vector<int32_t>& targets, const Vec& mask, int64_t V) {
  double c = 0;
  for (size_t r = 0; r < targets.size(); ++r) c += weight(targets, mask, V, r);
  return c;
}

// The row's largest logit and the sum of exp(x - max).
std::pair<double, double> max_and_sum(const double* x, int64_t V) {
  double m = *std::max_element(x, x + V), s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(x[i] - m);
  return {m, s};
}

}  // namespace

double cross_entropy_loss(const Vec& logits, const std::vector<int32_t>& targets, const Vec& mask, int64_t V) {
  double sum = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    double w = weight(targets, mask, V, r);
    if (w == 0) continue;
    const double* x = logits.data() + r * V;
    auto [m, s] = max_and_sum(x, V);
    sum += w * (m + std::log(s) - x[targets[r]]);
  }
  double c = count(targets, mask, V);
  return c != 0 ? sum / c : 0.0;
}

Vec cross_entropy_grad(const Vec& logits, const std::vector<int32_t>& targets, const Vec& mask, int64_t V,
                       double grad_scale) {
  Vec g(logits.size(), 0.0);
  const double c = count(targets, mask, V);
  for (size_t r = 0; r < targets.size(); ++r) {
    double w = weight(targets, mask, V, r);
    if (w == 0) continue;
    const double* x = logits.data() + r * V;
    auto [m, s] = max_and_sum(x, V);
    for (int64_t i = 0; i < V; ++i)
      g[r * V + i] = (std::exp(x[i] - m) / s - (i == targets[r] ? 1.0 : 0.0)) * w * grad_scale / c;
  }
  return g;
}

}  // namespace vkm::ref
