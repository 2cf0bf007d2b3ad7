#include <cmath>
#include <cstdint>
#include <limits>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

namespace {
// Rounds x to a binary float with `mant` explicit mantissa bits and exponent range [emin, emax].
double round_to(double x, int mant, int emin, int emax) {
  if (!std::isfinite(x) || x == 0) return x;
  int e;
  std::frexp(std::fabs(x), &e);  // |x| = f * 2^e, f in [0.5, 1)
  int exp = std::max(e - 1, emin);  // subnormals keep the minimum exponent's spacing
  double quantum = std::ldexp(1.0, exp - mant);
  double r = std::nearbyint(x / quantum) * quantum;  // default rounding mode: nearest even
  if (std::fabs(r) >= std::ldexp(2.0 - std::ldexp(1.0, -mant - 1), emax)) return std::copysign(INFINITY, x);
  return r;
}
}  // namespace

double round_f16(double x) { return round_to(x, 10, -14, 15); }
double round_bf16(double x) { return round_to(x, 7, -126, 127); }
double round_f32(double x) { return double(float(x)); }

}  // namespace vkm::ref
