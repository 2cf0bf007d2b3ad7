#include "tests/reference/grad_norm.hpp"

#include <algorithm>
#include <cmath>

namespace vkm::ref {

double l2_norm(const Vec& g) {
  double s = 0;
  for (double x : g) s += x * x;
  return std::sqrt(s);
}

double clip_factor(double norm, double max_norm) { return max_norm > 0 ? std::min(1.0, max_norm / (norm + 1e-6)) : 1.0; }

ScaledGradStats scaled_grad_stats(const Vec& scaled_grads, double max_norm, const LossScale& state, int accum,
                                  int growth_interval) {
  ScaledGradStats r;
  const double scaled = l2_norm(scaled_grads);
  // The device sums squares in fp32: past its range the sum is infinite.
  r.non_finite = !std::isfinite(scaled) || scaled * scaled > 3.4028234663852886e38;
  r.norm = scaled / state.scale;
  r.clip = r.non_finite ? 0.0 : clip_factor(r.norm, max_norm) / state.scale;
  r.next = state;
  r.next.clean_steps = r.non_finite ? 0 : state.clean_steps + 1;
  if (r.non_finite) {
    r.next.scale = std::max(state.scale / 2, 1.0);
    r.next.skipped_steps += 1;
  }
  if (r.next.clean_steps >= growth_interval) {
    r.next.scale = std::min(r.next.scale * 2, 16777216.0);
    r.next.clean_steps = 0;
  }
  r.grad_scale = r.next.scale / accum;
  return r;
}

}  // namespace vkm::ref
