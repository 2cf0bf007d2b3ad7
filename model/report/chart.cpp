#include "model/report/chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

namespace vkm::report {

namespace {

constexpr double kCharWidth = 6.4;  // estimated advance of an 11 px sans-serif character
constexpr double kEdge = 12;        // space between the chart's border and its title, legend and y label
constexpr double kLegendRow = 16;
constexpr double kTickLength = 5;
constexpr const char* kFont = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif";
constexpr const char* kText = "#444";
constexpr const char* kMuted = "#999";

double text_width(std::string_view s) {
  // Code points, not bytes: a continuation byte of UTF-8 starts with the bits 10.
  const auto n = std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  return double(n) * kCharWidth;
}

template <class... A>
std::string format(const char* f, A... a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

// A pixel coordinate with one decimal, without a trailing ".0": the SVG stays short for long runs.
std::string px(double v) {
  std::string s = format("%.1f", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

// Data units to a fraction of the axis (0 at lo, 1 at hi).
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  bool drawable(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double frac(double v) const {
    return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  }
};

// The axis range: fixed limits where given, else the values' range, widened where it is a single value and
// (pad) by 5% at both ends so that extremes do not sit on the frame; non-negative data keeps a floor at 0.
Scale make_scale(const Axis& axis, const std::vector<double>& values, bool pad) {
  Scale s;
  s.log = axis.log;
  if (values.empty()) {
    s.lo = s.log ? 1 : 0;
    s.hi = s.log ? 10 : 1;
  } else {
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    s.lo = *lo;
    s.hi = *hi;
    if (s.lo == s.hi) {
      const double d = s.lo == 0 ? 1 : std::abs(s.lo) * 0.1;
      s.lo = s.log ? s.lo / 2 : s.lo - d;
      s.hi = s.log ? s.hi * 2 : s.hi + d;
    } else if (pad && s.log) {
      const double f = std::pow(s.hi / s.lo, 0.05);
      s.lo /= f;
      s.hi *= f;
    } else if (pad) {
      const double d = (s.hi - s.lo) * 0.05;
      s.lo = s.lo >= 0 ? std::max(0.0, s.lo - d) : s.lo - d;
      s.hi += d;
    }
  }
  if (axis.min) s.lo = *axis.min;
  if (axis.max) s.hi = *axis.max;
  if (s.log && !(s.lo > 0)) s.lo = s.hi > 0 ? s.hi / 10 : 1;  // a fixed limit ≤ 0 cannot be shown on a log axis
  if (!(s.hi > s.lo)) s.hi = s.log ? s.lo * 10 : s.lo + 1;
  return s;
}

struct AxisTicks {
  std::vector<double> values;
  std::vector<std::string> labels, secondary;
};

AxisTicks make_ticks(const Scale& s, int max_ticks, const std::function<std::string(double)>& secondary) {
  AxisTicks t;
  t.values = s.log ? log_ticks(s.lo, s.hi, max_ticks) : linear_ticks(s.lo, s.hi, max_ticks);
  // Labels need the digits the spacing needs; on a log axis, ticks of the form digit·10^k need their own only.
  double spacing = t.values.size() > 1 ? t.values[1] - t.values[0] : s.hi - s.lo;
  const bool digit_ticks = s.log && std::all_of(t.values.begin(), t.values.end(), [](double v) {
    const double m = v / std::pow(10.0, std::floor(std::log10(v)));
    return std::abs(m - std::round(m)) < 1e-6;
  });
  for (double v : t.values) {
    t.labels.push_back(format_tick(v, digit_ticks ? v : spacing));
    if (secondary) t.secondary.push_back(secondary(v));
  }
  return t;
}

struct LegendEntry {
  const Series* series;
  double x, y;  // top left of its row
};

struct Layout {
  Scale x, y;
  AxisTicks xt, yt;
  std::vector<LegendEntry> legend;
  Frame frame;
};

Layout layout(const Chart& c) {
  Layout l;
  std::vector<double> xs, ys;
  l.x.log = c.x.log;
  l.y.log = c.y.log;
  for (const Series& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (l.x.drawable(s.x[i]) && l.y.drawable(s.y[i])) {
        xs.push_back(s.x[i]);
        ys.push_back(s.y[i]);
      }
  l.x = make_scale(c.x, xs, false);
  l.y = make_scale(c.y, ys, true);
  l.xt = make_ticks(l.x, std::max(2, int(c.width / 90)), c.x_secondary);
  l.yt = make_ticks(l.y, std::max(2, int(c.height / 45)), {});

  double top = c.title.empty() ? 8 : 26;
  double x = kEdge;
  for (const Series& s : c.series) {
    if (s.name.empty()) continue;
    const double w = 22 + text_width(s.name) + 14;
    if (x + w > c.width - kEdge && x > kEdge) {  // wrap to a new row
      x = kEdge;
      top += kLegendRow;
    }
    l.legend.push_back({&s, x, top});
    x += w;
  }
  if (!l.legend.empty()) top += kLegendRow;

  double y_labels = 0, last_x_label = 0;
  for (const auto& s : l.yt.labels) y_labels = std::max(y_labels, text_width(s));
  if (!l.xt.labels.empty()) last_x_label = text_width(l.xt.labels.back());
  if (!l.xt.secondary.empty()) last_x_label = std::max(last_x_label, text_width(l.xt.secondary.back()));
  l.frame.left = (c.y.label.empty() ? 4 : kEdge + 14) + y_labels + kTickLength + 4;
  l.frame.right = c.width - std::max(16.0, last_x_label / 2 + 4);
  l.frame.top = top + 8;
  l.frame.bottom = c.height - (18 + (c.x_secondary ? 13 : 0) + (c.x.label.empty() ? 0 : 16) + 4);
  return l;
}

struct Point {
  double x, y;
};

// Consecutive points in one pixel column become at most four, in their order: the first, the lowest, the
// highest and the last. The line looks the same, and a run of a million steps stays a small file.
void append_thinned(std::vector<Point>& out, const std::vector<Point>& segment) {
  for (size_t i = 0; i < segment.size();) {
    const double column = std::floor(segment[i].x);
    size_t end = i, lo = i, hi = i;
    for (; end < segment.size() && std::floor(segment[end].x) == column; ++end) {
      if (segment[end].y < segment[lo].y) lo = end;
      if (segment[end].y > segment[hi].y) hi = end;
    }
    size_t keep[] = {i, lo, hi, end - 1};
    std::sort(std::begin(keep), std::end(keep));
    for (size_t k = 0; k < 4; ++k)
      if (k == 0 || keep[k] != keep[k - 1]) out.push_back(segment[keep[k]]);
    i = end;
  }
}

std::string circle(const Point& p, double r, const Series& s) {
  return "<circle cx=\"" + px(p.x) + "\" cy=\"" + px(p.y) + "\" r=\"" + px(r) + "\" fill=\"" + escape_xml(s.color) +
         "\" fill-opacity=\"" + px(s.opacity * 100) + "%\"/>\n";
}

// The drawn series: one polyline per run of drawable points (a lone point as a dot), then the markers.
std::string draw_series(const Series& s, const Layout& l) {
  const Frame& f = l.frame;
  auto to_pixels = [&](size_t i) {
    return Point{f.left + l.x.frac(s.x[i]) * (f.right - f.left), f.bottom - l.y.frac(s.y[i]) * (f.bottom - f.top)};
  };
  std::vector<std::vector<Point>> segments(1);
  std::vector<Point> markers;
  for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
    if (!l.x.drawable(s.x[i]) || !l.y.drawable(s.y[i])) {
      if (!segments.back().empty()) segments.emplace_back();
      continue;
    }
    segments.back().push_back(to_pixels(i));
    if (s.markers) markers.push_back(segments.back().back());
  }
  std::string out;
  const std::string stroke = "fill=\"none\" stroke=\"" + escape_xml(s.color) + "\" stroke-width=\"" + px(s.width) +
                             "\" stroke-opacity=\"" + px(s.opacity * 100) + "%\" stroke-linejoin=\"round\"" +
                             (s.dashed ? " stroke-dasharray=\"5 3\"" : "");
  for (const auto& segment : segments) {
    if (segment.size() == 1 && !s.markers) out += circle(segment[0], s.width, s);
    if (segment.size() < 2) continue;
    std::vector<Point> points;
    append_thinned(points, segment);
    out += "<polyline " + stroke + " points=\"";
    for (size_t i = 0; i < points.size(); ++i) out += (i ? " " : "") + px(points[i].x) + "," + px(points[i].y);
    out += "\"/>\n";
  }
  for (const Point& p : markers) out += circle(p, std::max(2.5, s.width + 1), s);
  return out;
}

std::string text(double x, double y, std::string_view anchor, std::string_view attrs, std::string_view body) {
  return "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + std::string(anchor) + "\" " +
         std::string(attrs) + ">" + escape_xml(body) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, std::string_view attrs) {
  return "<line x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" + px(y2) + "\" " +
         std::string(attrs) + "/>\n";
}

std::string draw_axes(const Chart& c, const Layout& l) {
  const Frame& f = l.frame;
  std::string out;
  const std::string muted = std::string("fill=\"") + kMuted + "\" font-size=\"10\"";
  double last_label_y = 1e9;  // y labels are skipped where they would overlap the one below
  for (size_t i = 0; i < l.yt.values.size(); ++i) {
    const double y = f.bottom - l.y.frac(l.yt.values[i]) * (f.bottom - f.top);
    out += line(f.left, y, f.right, y, "stroke=\"#ebebeb\"");
    out += line(f.left - kTickLength, y, f.left, y, "stroke=\"#bbb\"");
    if (last_label_y - y < 13) continue;
    out += text(f.left - kTickLength - 3, y + 4, "end", "", l.yt.labels[i]);
    last_label_y = y;
  }
  double last_label_right = -1e9;  // likewise x labels that would run into the one on their left
  for (size_t i = 0; i < l.xt.values.size(); ++i) {
    const double x = f.left + l.x.frac(l.xt.values[i]) * (f.right - f.left);
    out += line(x, f.top, x, f.bottom, "stroke=\"#f2f2f2\"");
    out += line(x, f.bottom, x, f.bottom + kTickLength, "stroke=\"#bbb\"");
    double w = text_width(l.xt.labels[i]);
    if (!l.xt.secondary.empty()) w = std::max(w, text_width(l.xt.secondary[i]));
    if (x - w / 2 < last_label_right + 8) continue;
    out += text(x, f.bottom + 17, "middle", "", l.xt.labels[i]);
    if (!l.xt.secondary.empty()) out += text(x, f.bottom + 30, "middle", muted, l.xt.secondary[i]);
    last_label_right = x + w / 2;
  }
  out += line(f.left, f.bottom, f.right, f.bottom, "stroke=\"#bbb\"");
  if (!c.x.label.empty()) out += text((f.left + f.right) / 2, c.height - 6, "middle", "", c.x.label);
  if (!c.y.label.empty()) {
    const double cy = (f.top + f.bottom) / 2;
    out += "<text transform=\"translate(" + px(kEdge + 4) + "," + px(cy) + ") rotate(-90)\" text-anchor=\"middle\">" +
           escape_xml(c.y.label) + "</text>\n";
  }
  return out;
}

std::string draw_legend(const Layout& l) {
  std::string out;
  for (const LegendEntry& e : l.legend) {
    const Series& s = *e.series;
    const double y = e.y + kLegendRow / 2;
    out += line(e.x, y, e.x + 18, y,
                "stroke=\"" + escape_xml(s.color) + "\" stroke-width=\"" + px(std::max(2.0, s.width)) +
                    "\" stroke-opacity=\"" + px(std::max(0.5, s.opacity) * 100) + "%\"" +
                    (s.dashed ? " stroke-dasharray=\"5 3\"" : ""));
    if (s.markers) out += circle({e.x + 9, y}, 2.5, s);
    out += text(e.x + 22, y + 4, "start", "", s.name);
  }
  return out;
}

}  // namespace

Frame plot_frame(const Chart& chart) { return layout(chart).frame; }

std::vector<double> linear_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo) return {};
  if (hi == lo) return {lo};
  max_ticks = std::max(2, max_ticks);
  // The smallest 1·10^k, 2·10^k or 5·10^k step that gives at most max_ticks ticks.
  for (double decade = std::pow(10.0, std::floor(std::log10((hi - lo) / max_ticks)));; decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * decade;
      const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
      if (last - first + 1 > max_ticks) continue;
      std::vector<double> ticks;
      for (double i = first; i <= last; ++i) ticks.push_back(i * step);
      return ticks;
    }
  }
}

std::vector<double> log_ticks(double lo, double hi, int max_ticks) {
  if (!(lo > 0) || !std::isfinite(hi) || !(hi > lo)) return {};
  max_ticks = std::max(2, max_ticks);
  auto ticks_of = [&](std::initializer_list<int> mantissas) {
    std::vector<double> t;
    for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e)
      for (int m : mantissas) {
        const double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
      }
    // Too many: keep every n-th, from the first.
    const size_t every = (t.size() + max_ticks - 1) / max_ticks;
    std::vector<double> kept;
    for (size_t i = 0; i < t.size(); i += every) kept.push_back(t[i]);
    return kept;
  };
  for (auto mantissas : {std::initializer_list<int>{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}})
    if (auto t = ticks_of(mantissas); t.size() >= 3) return t;
  return linear_ticks(lo, hi, max_ticks);
}

std::string svg_chart(const Chart& c) {
  const Layout l = layout(c);
  const Frame& f = l.frame;
  const std::string clip = escape_xml(c.id) + "-plot";
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(c.width) + "\" height=\"" +
                    std::to_string(c.height) + "\" viewBox=\"0 0 " + std::to_string(c.width) + " " +
                    std::to_string(c.height) + "\" font-family=\"" + kFont + "\" font-size=\"11\" fill=\"" + kText +
                    "\">\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  if (!c.title.empty()) out += text(kEdge, 18, "start", "font-size=\"13\" font-weight=\"600\" fill=\"#222\"", c.title);
  out += draw_legend(l);
  out += draw_axes(c, l);
  // Lines may run to the frame's edge; markers and line widths a little past it.
  out += "<clipPath id=\"" + clip + "\"><rect x=\"" + px(f.left - 4) + "\" y=\"" + px(f.top - 4) + "\" width=\"" +
         px(f.right - f.left + 8) + "\" height=\"" + px(f.bottom - f.top + 8) + "\"/></clipPath>\n";
  out += "<g clip-path=\"url(#" + clip + ")\">\n";
  bool any = false;
  for (const Series& s : c.series) {
    const std::string drawn = draw_series(s, l);
    any = any || !drawn.empty();
    out += drawn;
  }
  for (const Mark& m : c.marks) {
    if (!l.x.drawable(m.x) || m.x < l.x.lo || m.x > l.x.hi) continue;
    const double x = f.left + l.x.frac(m.x) * (f.right - f.left);
    out += line(x, f.top, x, f.bottom, "stroke=\"#888\" stroke-dasharray=\"4 3\"");
    out += text(x + 4, f.top + 11, "start", "fill=\"#666\" font-size=\"10\"", m.label);
  }
  out += "</g>\n";
  if (!any) out += text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "middle", "fill=\"#999\"", "no data");
  out += "</svg>\n";
  return out;
}

std::string format_tick(double v, double spacing) {
  if (v == 0) return "0";
  if (!std::isfinite(v)) return format("%g", v);
  const double a = std::abs(v);
  spacing = std::abs(spacing);
  if (!(spacing > 0) || !std::isfinite(spacing)) spacing = a;
  auto decimals = [](double step) { return std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6); };
  if (a >= 1e4) {
    int k = 1;  // thousands, millions, ...
    while (k < 5 && a >= std::pow(1000.0, k + 1)) ++k;
    const double unit = std::pow(1000.0, k);
    return format("%.*f", decimals(spacing / unit), v / unit) + "kMGTP"[k - 1];
  }
  if (a < 1e-3 || spacing < 1e-3) {
    int e = int(std::floor(std::log10(a)));
    std::string m = format("%.*f", decimals(spacing / std::pow(10.0, e)), v / std::pow(10.0, e));
    if (std::abs(std::stod(m)) >= 10) {  // log10 rounded down past a power of ten, or the mantissa rounded up to 10
      ++e;
      m = format("%.*f", decimals(spacing / std::pow(10.0, e)), v / std::pow(10.0, e));
    }
    return m + "e" + std::to_string(e);
  }
  return format("%.*f", decimals(spacing), v);
}

std::string format_si(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : v > 0 ? "∞" : "−∞";
  static const char* const suffixes[] = {"", "k", "M", "G", "T"};
  int k = 0;
  while (k < 4 && std::abs(v) / std::pow(1000.0, k) >= 999.5) ++k;  // 999.7 reads "1k", not "1e+03"
  return format("%.3g", v / std::pow(1000.0, k)) + suffixes[k];
}

std::string escape_xml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // Control characters are not allowed in XML at all: shown as U+FFFD.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += "\xEF\xBF\xBD";
        else
          out += c;
    }
  }
  return out;
}

}  // namespace vkm::report
