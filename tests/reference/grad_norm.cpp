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

}  // namespace vkm::ref
