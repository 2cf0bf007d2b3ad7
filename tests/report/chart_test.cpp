// SVG line charts: well-formed output, data mapped to the right pixels on linear and log axes, gaps at
// non-finite values, empty and one-point series, tick choice and labels, thinning of long series, escaping.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/report/chart.hpp"
#include "tests/report/report_support.hpp"

namespace vkm::report {
namespace {

using test::attribute_values;
using test::parse_points;
using test::xml_problem;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], std::abs(want[i]) * 1e-12) << "tick " << i;
}

TEST(XmlChecker, RejectsWhatIsNotWellFormed) {
  EXPECT_EQ(xml_problem("<svg><g a=\"1\"/><text>a &amp; b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=\"<\"></svg>"), "");
  EXPECT_NE(xml_problem("<svg></svg><svg></svg>"), "");
  EXPECT_NE(xml_problem("<svg>"), "");
}

TEST(Chart, EverythingAtOnceIsWellFormedAndEscaped) {
  Chart c;
  c.id = "all";
  c.title = "Loss <train> & \"val\"";
  c.x.label = "step";
  c.y.label = "loss";
  c.y.log = true;
  c.series.push_back({"a<b & 'c'", {1, 2, 3, 4}, {4, 3, 2.5, 2}, "#1f77b4", 1, 0.3});
  c.series.push_back({"smoothed", {1, 2, 3, 4}, {4, 3.2, 2.6, 2.1}, "#1f77b4", 1.8});
  Series val{"val", {2, 4}, {3.1, 2.2}, "#ff7f0e"};
  val.markers = true;
  val.dashed = true;
  c.series.push_back(val);
  c.marks.push_back({3, "sft"});
  c.x_secondary = [](double step) { return format_si(step * 4096) + " tok"; };
  const std::string svg = svg_chart(c);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_NE(svg.find("Loss &lt;train&gt; &amp; &quot;val&quot;"), std::string::npos);
  EXPECT_NE(svg.find(">a&lt;b &amp; &#39;c&#39;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">8.19k tok</text>"), std::string::npos);  // step 2's secondary label
  EXPECT_NE(svg.find(">sft</text>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline "), 3u);
  EXPECT_EQ(count(svg, "stroke-dasharray=\"5 3\""), 2u);  // the val line and its legend entry
  EXPECT_EQ(attribute_values(svg, "clipPath", "id"), std::vector<std::string>{"all-plot"});
}

TEST(Chart, PointsMapToPixelsOnLinearAxes) {
  Chart c;
  c.x.min = 0;
  c.x.max = 100;
  c.y.min = 0;
  c.y.max = 10;
  c.series.push_back({"s", {0, 25, 50, 100}, {0, 5, 10, 2.5}});
  const Frame f = plot_frame(c);
  ASSERT_LT(f.left, f.right);
  ASSERT_LT(f.top, f.bottom);
  const auto polylines = attribute_values(svg_chart(c), "polyline", "points");
  ASSERT_EQ(polylines.size(), 1u);
  const auto p = parse_points(polylines[0]);
  ASSERT_EQ(p.size(), 4u);
  const double w = f.right - f.left, h = f.bottom - f.top;
  const std::vector<std::pair<double, double>> want = {
      {f.left, f.bottom}, {f.left + w / 4, f.bottom - h / 2}, {f.left + w / 2, f.top}, {f.right, f.bottom - h / 4}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(p[i].first, want[i].first, 0.051) << "point " << i;
    EXPECT_NEAR(p[i].second, want[i].second, 0.051) << "point " << i;
  }
}

TEST(Chart, PointsMapToPixelsOnLogAxisAndDataRange) {
  Chart c;
  c.y.log = true;
  c.y.min = 1e-3;
  c.y.max = 10;
  c.series.push_back({"s", {10, 20, 30}, {1e-3, 0.1, 10}});  // x range from the data: 10 at left, 30 at right
  const Frame f = plot_frame(c);
  const auto p = parse_points(attribute_values(svg_chart(c), "polyline", "points").at(0));
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NEAR(p[0].first, f.left, 0.051);
  EXPECT_NEAR(p[2].first, f.right, 0.051);
  EXPECT_NEAR(p[1].first, (f.left + f.right) / 2, 0.051);
  EXPECT_NEAR(p[0].second, f.bottom, 0.051);
  EXPECT_NEAR(p[1].second, (f.top + f.bottom) / 2, 0.051);  // 0.1 is halfway between 1e-3 and 10 in decades
  EXPECT_NEAR(p[2].second, f.top, 0.051);
}

TEST(Chart, NonFiniteValuesBreakTheLine) {
  Chart c;
  c.series.push_back({"s", {1, 2, 3, 4, 5, 6, 7}, {1, NAN, 2, 3, INFINITY, 4, 5}});
  std::string svg = svg_chart(c);
  EXPECT_EQ(xml_problem(svg), "");
  auto lines = attribute_values(svg, "polyline", "points");
  ASSERT_EQ(lines.size(), 2u);  // [2, 3] and [4, 5]; the lone first point is a dot
  EXPECT_EQ(parse_points(lines[0]).size(), 2u);
  EXPECT_EQ(parse_points(lines[1]).size(), 2u);
  EXPECT_EQ(count(svg, "<circle "), 1u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);

  c.y.log = true;  // on a log axis, values ≤ 0 cannot be drawn either
  c.series[0] = {"s", {1, 2, 3, 4, 5}, {1, 0, -1, 2, 3}};
  svg = svg_chart(c);
  lines = attribute_values(svg, "polyline", "points");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(parse_points(lines[0]).size(), 2u);
}

TEST(Chart, EmptyAndOnePointSeries) {
  Chart c;
  std::string svg = svg_chart(c);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find(">no data</text>"), std::string::npos);

  c.series.push_back({"all NaN", {1, 2}, {NAN, NAN}});
  c.series.push_back({"empty", {}, {}});
  svg = svg_chart(c);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
  EXPECT_NE(svg.find(">all NaN</text>"), std::string::npos);  // still in the legend
  EXPECT_EQ(count(svg, "<polyline "), 0u);

  c.series = {{"one", {5}, {3}}};  // a single value gets a range around it, and shows as a dot in the middle
  svg = svg_chart(c);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.find(">no data</text>"), std::string::npos);
  const Frame f = plot_frame(c);
  ASSERT_EQ(attribute_values(svg, "circle", "cx").size(), 1u);
  EXPECT_NEAR(std::stod(attribute_values(svg, "circle", "cx")[0]), (f.left + f.right) / 2, 0.051);
  EXPECT_NEAR(std::stod(attribute_values(svg, "circle", "cy")[0]), (f.top + f.bottom) / 2, 0.051);
}

TEST(Chart, LinearTicks) {
  expect_near_all(linear_ticks(0, 1, 7), {0, 0.2, 0.4, 0.6, 0.8, 1.0});
  expect_near_all(linear_ticks(0.5, 403, 7), {100, 200, 300, 400});
  expect_near_all(linear_ticks(-3, 3, 7), {-3, -2, -1, 0, 1, 2, 3});
  expect_near_all(linear_ticks(2e-5, 5.2e-4, 6), {1e-4, 2e-4, 3e-4, 4e-4, 5e-4});
  EXPECT_EQ(linear_ticks(-3, 3, 7)[3], 0.0);  // exactly zero, not -4e-17
  EXPECT_EQ(linear_ticks(2, 2), std::vector<double>{2});
  EXPECT_TRUE(linear_ticks(3, 2).empty());
  EXPECT_TRUE(linear_ticks(NAN, 2).empty());
}

TEST(Chart, LogTicks) {
  expect_near_all(log_ticks(1e-5, 0.1), {1e-5, 1e-4, 1e-3, 1e-2, 1e-1});
  expect_near_all(log_ticks(1e-8, 1, 8), {1e-8, 1e-6, 1e-4, 1e-2, 1});  // nine powers thinned to every other
  expect_near_all(log_ticks(1, 50), {1, 2, 5, 10, 20, 50});
  expect_near_all(log_ticks(1.9, 9.5), {2, 3, 4, 5, 6, 7, 8, 9});
  expect_near_all(log_ticks(3.1, 3.4, 5), {3.1, 3.2, 3.3, 3.4});  // narrower than any digit: linear
  EXPECT_TRUE(log_ticks(0, 10).empty());
  EXPECT_TRUE(log_ticks(10, 1).empty());

  // On the chart: the powers labelled, evenly spaced.
  Chart c;
  c.y.log = true;
  c.y.min = 1e-5;
  c.y.max = 0.1;
  c.height = 400;
  c.series.push_back({"", {0, 1}, {1e-5, 0.1}});
  const std::string svg = svg_chart(c);
  for (const char* label : {">1e-5<", ">1e-4<", ">0.001<", ">0.01<", ">0.1<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  std::vector<double> grid;  // the horizontal grid lines, bottom to top
  const auto y1 = attribute_values(svg, "line", "y1"), y2 = attribute_values(svg, "line", "y2"),
             stroke = attribute_values(svg, "line", "stroke");
  for (size_t i = 0; i < y1.size(); ++i)
    if (stroke[i] == "#ebebeb" && y1[i] == y2[i]) grid.push_back(std::stod(y1[i]));
  ASSERT_EQ(grid.size(), 5u);
  for (size_t i = 2; i < grid.size(); ++i) EXPECT_NEAR(grid[i] - grid[i - 1], grid[1] - grid[0], 0.11);
}

TEST(Chart, TickLabels) {
  EXPECT_EQ(format_tick(0, 0.1), "0");
  EXPECT_EQ(format_tick(0.25, 0.05), "0.25");
  EXPECT_EQ(format_tick(400, 100), "400");
  EXPECT_EQ(format_tick(12000, 2000), "12k");
  EXPECT_EQ(format_tick(1.5e6, 5e5), "1.5M");
  EXPECT_EQ(format_tick(3e-4, 1e-4), "3e-4");
  EXPECT_EQ(format_tick(2.5e-4, 5e-5), "2.5e-4");
  EXPECT_EQ(format_tick(-2e-5, 1e-5), "-2e-5");
  EXPECT_EQ(format_tick(1e-3, 1e-4), "1.0e-3");
  EXPECT_EQ(format_si(25829888), "25.8M");
  EXPECT_EQ(format_si(999.7), "1k");
  EXPECT_EQ(format_si(400), "400");
  EXPECT_EQ(format_si(0.00049), "0.00049");
  EXPECT_EQ(format_si(NAN), "NaN");
}

TEST(Chart, LongSeriesAreThinnedKeepingTheirExtremes) {
  Chart c;
  Series s;
  for (int i = 0; i < 100000; ++i) {
    s.x.push_back(i);
    s.y.push_back(i == 53000 ? 100.0 : std::sin(i * 0.01));
  }
  c.series.push_back(s);
  c.y.min = -1;
  c.y.max = 100;
  const Frame f = plot_frame(c);
  const auto p = parse_points(attribute_values(svg_chart(c), "polyline", "points").at(0));
  EXPECT_LE(p.size(), size_t(4 * (f.right - f.left + 1)));
  double top = 1e9, left = 1e9, right = -1e9;
  for (const auto& [x, y] : p) {
    top = std::min(top, y);
    left = std::min(left, x);
    right = std::max(right, x);
  }
  EXPECT_NEAR(top, f.top, 0.051);  // the one spike survives
  EXPECT_NEAR(left, f.left, 0.051);
  EXPECT_NEAR(right, f.right, 0.051);
}

TEST(Chart, EscapesTextAndControlCharacters) {
  EXPECT_EQ(escape_xml("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(escape_xml(std::string("a\x01" "b\tc\n", 6)), "a\xEF\xBF\xBD" "b\tc\n");
  EXPECT_EQ(escape_xml("ü → ✓"), "ü → ✓");
}

}  // namespace
}  // namespace vkm::report
