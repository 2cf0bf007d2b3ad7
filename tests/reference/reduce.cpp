#include "tests/reference/reduce.hpp"

namespace vkm::ref {

double sum(const Vec& x) {
  double s = 0;
  for (double v : x) s += v;
  return s;
}

double sum_squares(const Vec& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return s;
}

}  // namespace vkm::ref
