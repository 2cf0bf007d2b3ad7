#include "tests/reference/sample.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vkm::ref {

namespace {

// The processed logits z (penalty, then temperature).
Vec processed(const Vec& logits, const std::vector<bool>& seen, const SampleParams& p) {
  Vec z(logits);
  for (size_t i = 0; i < z.size(); ++i) {
    if (seen[i]) z[i] = z[i] < 0 ? z[i] * p.penalty : z[i] / p.penalty;
    if (p.temperature > 0) z[i] /= p.temperature;
  }
  return z;
}

// exp(z - max z) for the tokens top-k and top-p keep, 0 for the others.
Vec kept_weights(const Vec& z, const SampleParams& p) {
  const int64_t V = int64_t(z.size());
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
  double threshold = -INFINITY;  // keep z >= threshold
  if (p.top_k > 0 && p.top_k < V) threshold = z[order[p.top_k - 1]];
  const double top = z[order[0]];
  auto weights = [&] {
    Vec w(V);
    for (int64_t i = 0; i < V; ++i) w[i] = z[i] >= threshold ? std::exp(z[i] - top) : 0.0;
    return w;
  };
  if (p.top_p < 1) {
    const Vec w = weights();
    const double kept = std::accumulate(w.begin(), w.end(), 0.0);
    // Down the sorted tokens, a whole group of equal values at a time, until the mass reaches p.
    double mass = 0;
    for (int64_t r = 0; r < V;) {
      const double value = z[order[r]];
      for (; r < V && z[order[r]] == value; ++r) mass += w[order[r]];
      if (mass >= p.top_p * kept) {
        threshold = std::max(threshold, value);
        break;
      }
    }
  }
  return weights();
}

}  // namespace

std::vector<int32_t> sample_candidates(const Vec& logits, const std::vector<bool>& seen, const SampleParams& p,
                                       double u, double tol) {
  const Vec z = processed(logits, seen, p);
  if (p.temperature == 0) return {int32_t(std::max_element(z.begin(), z.end()) - z.begin())};  // the first largest
  std::vector<int32_t> out;
  for (double dp : {0.0, -tol, tol}) {
    SampleParams q = p;
    if (p.top_p < 1) q.top_p = std::clamp(p.top_p + dp, 1e-12, 1.0);
    const Vec w = kept_weights(z, q);
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    // The tokens whose share [run, run + w) of the total meets [u - tol, u + tol] times it (with tol 0: the
    // first whose running sum exceeds u times the total), and the last kept one when rounding leaves u past
    // the end.
    const double lo = (u - tol) * total, hi = (u + tol) * total;
    double run = 0;
    int32_t last = -1;
    for (int64_t i = 0; i < int64_t(w.size()); ++i) {
      if (w[i] == 0) continue;
      last = int32_t(i);
      const bool meets = run <= hi && run + w[i] > lo;
      run += w[i];
      if (meets && std::find(out.begin(), out.end(), last) == out.end()) out.push_back(last);
      if (run > hi) break;
    }
    if (run <= hi && std::find(out.begin(), out.end(), last) == out.end()) out.push_back(last);
  }
  return out;
}

}  // namespace vkm::ref
