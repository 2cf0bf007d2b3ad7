#include "tests/reference/elementwise.hpp"

#include <cstddef>

namespace vkm::ref {

Vec add(const Vec& a, const Vec& b) {
  Vec out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + b[i];
  return out;
}

Vec scale(const Vec& x, double alpha) {
  Vec out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = alpha * x[i];
  return out;
}

}  // namespace vkm::ref
