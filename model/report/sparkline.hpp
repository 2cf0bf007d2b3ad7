#pragma once
// A one-line chart for a terminal progress line, e.g. the loss so far: "▇▆▅▄▄▃▃▂▂▂".
#include <span>
#include <string>

namespace vkm::report {

// At most `width` characters of ▁▂▃▄▅▆▇█: with more values than that, each character is the mean of its
// share of them (all of them are shown, oldest on the left). Heights span the finite values' range; a share
// with no finite value is a space, and equal values give a flat middle line. Empty for no values or width < 1.
std::string sparkline(std::span<const double> values, int width);

}  // namespace vkm::report
