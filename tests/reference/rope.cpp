#include "tests/reference/rope.hpp"

#include <algorithm>
#include <cmath>

namespace vkm::ref {

namespace {

// Turns every pair (i, i + D/2) of every head by sign * pos * frequency[i].
Vec rotate(const Vec& x, const Rope& r, double sign) {
  const Vec freq = rope_frequencies(r);
  const double scale = r.yarn ? r.yarn->attention_factor : 1.0;
  const int64_t half = r.D / 2;
  Vec y(x.size());
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t t = 0; t < r.T; ++t)
      for (int64_t h = 0; h < r.H; ++h) {
        const int64_t row = ((b * r.T + t) * r.H + h) * r.D;
        for (int64_t i = 0; i < half; ++i) {
          const double angle = sign * double(r.start + t) * freq[i];
          const double c = scale * std::cos(angle), s = scale * std::sin(angle);
          const double u = x[row + i], v = x[row + i + half];
          y[row + i] = u * c - v * s;
          y[row + i + half] = u * s + v * c;
        }
      }
  return y;
}

}  // namespace

Vec rope_frequencies(const Rope& r) {
  const int64_t half = r.D / 2;
  Vec extrapolated(half);
  for (int64_t i = 0; i < half; ++i) extrapolated[i] = 1 / std::pow(r.theta, double(2 * i) / double(r.D));
  if (!r.yarn) return extrapolated;
  const Yarn& y = *r.yarn;
  // Pair index d at which a wavelength 2π θ^(2d/D) fits `rotations` times into the original context.
  auto correction_dim = [&](double rotations) {
    return r.D * std::log(y.original_max_position / (rotations * 2 * M_PI)) / (2 * std::log(r.theta));
  };
  const double low = std::max(0.0, std::floor(correction_dim(y.beta_fast)));
  const double high = std::min(double(half - 1), std::ceil(correction_dim(y.beta_slow)));
  Vec f(half);
  for (int64_t i = 0; i < half; ++i) {
    const double interpolated = extrapolated[i] / y.factor;
    const double ramp = std::clamp((i - low) / std::max(high - low, 0.001), 0.0, 1.0);
    const double keep = 1 - ramp;  // the share of the original frequency
    f[i] = interpolated * (1 - keep) + extrapolated[i] * keep;
  }
  return f;
}

Vec rope(const Vec& x, const Rope& r) { return rotate(x, r, 1); }
Vec rope_backward(const Vec& dy, const Rope& r) { return rotate(dy, r, -1); }

}  // namespace vkm::ref
