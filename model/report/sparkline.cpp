#include "model/report/sparkline.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vkm::report {

std::string sparkline(std::span<const double> values, int width) {
  if (values.empty() || width < 1) return "";
  static const char* const kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const size_t n = std::min(values.size(), size_t(width));
  std::vector<double> means(n, NAN);
  for (size_t c = 0; c < n; ++c) {
    // Character c covers values [c·size/n, (c+1)·size/n): every value falls in exactly one.
    const size_t begin = c * values.size() / n, end = (c + 1) * values.size() / n;
    double sum = 0;
    size_t count = 0;
    for (size_t i = begin; i < end; ++i)
      if (std::isfinite(values[i])) {
        sum += values[i];
        ++count;
      }
    if (count) means[c] = sum / double(count);
  }
  double lo = INFINITY, hi = -INFINITY;
  for (double m : means)
    if (!std::isnan(m)) {
      lo = std::min(lo, m);
      hi = std::max(hi, m);
    }
  std::string out;
  for (double m : means) {
    if (std::isnan(m))
      out += ' ';
    else
      out += kBars[hi > lo ? std::clamp(int(std::lround((m - lo) / (hi - lo) * 7)), 0, 7) : 3];
  }
  return out;
}

}  // namespace vkm::report
