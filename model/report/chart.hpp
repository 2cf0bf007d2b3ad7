#pragma once
// Line charts as self-contained SVG text, in the manner of a TensorBoard or W&B panel: title, legend, grid,
// axes with round ticks (linear or base-10 logarithmic), several series, gaps where values are not finite,
// labelled vertical marks (stage boundaries) and an optional second row of x labels (tokens under steps).
// Nothing is measured: text widths are estimated from character counts, so the output depends on the data
// alone and tests can read pixel positions back out of it.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vkm::report {

struct Series {
  std::string name;          // legend entry; empty: not listed
  std::vector<double> x, y;  // same length; a point with a non-finite value (or ≤ 0 on a log axis) breaks the line
  std::string color = "#1f77b4";
  double width = 1.5;        // stroke width in pixels
  double opacity = 1.0;
  bool markers = false;      // a dot on every point: sparse series such as validation loss
  bool dashed = false;
};

struct Axis {
  std::string label;
  bool log = false;                // base-10 logarithmic
  std::optional<double> min, max;  // fixed limits; by default the data's range (y padded by 5% of it)
};

struct Mark {  // a dashed vertical line at x, labelled at the top of the plot
  double x = 0;
  std::string label;
};

struct Chart {
  std::string id = "chart";  // prefix of element ids: give each chart its own when several share a page
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<Mark> marks;
  std::function<std::string(double)> x_secondary;  // a second, lighter label under each x tick (may be empty)
  int width = 640, height = 300;
};

// The plot area, in pixels from the chart's top left corner: x maps lo..hi onto left..right, y onto bottom..top.
struct Frame {
  double left, top, right, bottom;
};
Frame plot_frame(const Chart& chart);

// Tick values inside [lo, hi]: multiples of 1, 2 or 5·10^k, at most max_ticks of them.
std::vector<double> linear_ticks(double lo, double hi, int max_ticks = 7);
// Tick values inside [lo, hi] (0 < lo < hi) for a log axis: powers of ten where the range spans three or more;
// else 1, 2, 5·10^k; else every digit·10^k; else linear ticks (a range narrower than a factor of about two).
std::vector<double> log_ticks(double lo, double hi, int max_ticks = 8);

// The chart as a standalone <svg> element (also valid inline in HTML). Series with no drawable point are left
// out of the plot but kept in the legend; with none at all, the plot says "no data".
std::string svg_chart(const Chart& chart);

// A tick label with as many digits as the spacing between ticks needs: "0.25", "12k", "1.5M", "3e-4".
std::string format_tick(double v, double spacing);
// A quantity in three significant digits with a k/M/G/T suffix: 1640000 → "1.64M", 400 → "400".
std::string format_si(double v);
// Text made safe for XML and HTML, in elements and in quoted attributes: & < > " ' escaped, control
// characters other than tab and newline replaced by U+FFFD.
std::string escape_xml(std::string_view s);

}  // namespace vkm::report
