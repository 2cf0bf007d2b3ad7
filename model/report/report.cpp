#include "model/report/report.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <utility>

#include "engine/error.hpp"

namespace vkm::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Tableau's colors in pairs: a stage's training curves in the first, its validation in the second.
struct Palette {
  const char* train;
  const char* val;
};
constexpr Palette kPalettes[] = {
    {"#1f77b4", "#ff7f0e"}, {"#2ca02c", "#d62728"}, {"#9467bd", "#8c564b"}, {"#17becf", "#e377c2"}};

constexpr size_t kMaxMarkers = 60;  // more validation points than this make a line, not dots

// A stage on the shared axis: its steps and tokens continue where the previous stage's ended.
struct Placed {
  const Folder* folder;
  double step_offset, token_offset;
  Palette colors;
};

double last_tokens(const Metrics& m) {
  double tokens = 0;
  for (const TrainRecord& r : m.train)
    if (std::isfinite(r.tokens)) tokens = std::max(tokens, r.tokens);
  for (const ValRecord& r : m.val)
    if (std::isfinite(r.tokens)) tokens = std::max(tokens, r.tokens);
  return tokens;
}

std::vector<Placed> place(const std::vector<const Folder*>& stages) {
  std::vector<Placed> placed;
  double steps = 0, tokens = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    placed.push_back({stages[i], steps, tokens, kPalettes[i % std::size(kPalettes)]});
    steps += double(stages[i]->metrics.last_step());
    tokens += last_tokens(stages[i]->metrics);
  }
  return placed;
}

// The x axis's second label: tokens seen at a step, interpolated between the logged steps.
std::function<std::string(double)> tokens_label(const std::vector<Placed>& stages) {
  std::vector<std::pair<double, double>> points;  // (step, tokens) on the shared axis
  for (const Placed& p : stages) {
    for (const TrainRecord& r : p.folder->metrics.train)
      if (std::isfinite(r.tokens)) points.emplace_back(double(r.step) + p.step_offset, r.tokens + p.token_offset);
    for (const ValRecord& r : p.folder->metrics.val)
      if (std::isfinite(r.tokens)) points.emplace_back(double(r.step) + p.step_offset, r.tokens + p.token_offset);
  }
  std::sort(points.begin(), points.end());
  if (points.size() < 2) return {};
  return [points](double step) {
    const auto it = std::lower_bound(points.begin(), points.end(), std::make_pair(step, -double(INFINITY)));
    const size_t i = std::clamp<size_t>(it - points.begin(), 1, points.size() - 1);
    const auto& [x0, y0] = points[i - 1];
    const auto& [x1, y1] = points[i];
    const double tokens = x1 == x0 ? y1 : y0 + (step - x0) * (y1 - y0) / (x1 - x0);
    return format_si(std::max(0.0, tokens)) + " tok";
  };
}

// A legend entry: the stage's name where several share the chart, then what the line is.
std::string series_name(const std::vector<Placed>& stages, const Placed& p, const std::string& what) {
  std::string name = stages.size() > 1 ? p.folder->name : "";
  if (!name.empty() && !what.empty()) name += " ";
  return name + what;
}

bool any_finite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// One field of every stage's training records: light raw values under their moving average, or a plain line.
void add_train(Chart& c, const std::vector<Placed>& stages, double TrainRecord::*field, const std::string& what,
               bool smoothed) {
  for (const Placed& p : stages) {
    Series s;
    s.color = p.colors.train;
    for (const TrainRecord& r : p.folder->metrics.train) {
      s.x.push_back(double(r.step) + p.step_offset);
      s.y.push_back(r.*field);
    }
    if (!any_finite(s.y)) continue;
    if (smoothed) {
      Series raw = s;
      raw.width = 1;
      raw.opacity = 0.3;
      c.series.push_back(std::move(raw));
      s.y = smooth(s.y);
      s.width = 1.8;
    }
    s.name = series_name(stages, p, what);
    c.series.push_back(std::move(s));
  }
}

void add_val_loss(Chart& c, const std::vector<Placed>& stages) {
  for (const Placed& p : stages) {
    Series s;
    s.name = series_name(stages, p, "val");
    s.color = p.colors.val;
    s.markers = p.folder->metrics.val.size() <= kMaxMarkers;
    for (const ValRecord& r : p.folder->metrics.val) {
      s.x.push_back(double(r.step) + p.step_offset);
      s.y.push_back(r.loss);
    }
    if (any_finite(s.y)) c.series.push_back(std::move(s));
  }
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string two_digits(long v) { return (v < 10 ? "0" : "") + std::to_string(v); }

std::string duration(double s) {
  if (!(s >= 60)) return fixed(s, 1) + " s";
  const long t = std::lround(s);
  if (t < 3600) return std::to_string(t / 60) + "m " + two_digits(t % 60) + "s";
  return std::to_string(t / 3600) + "h " + two_digits(t / 60 % 60) + "m";
}

// "25829888" → "25,829,888".
std::string with_separators(std::string digits) {
  const size_t first = digits[0] == '-' ? 1 : 0;
  for (size_t i = digits.size(); i > first + 3; i -= 3) digits.insert(i - 3, ",");
  return digits;
}

// A JSON value as a person reads it: strings bare, integers grouped by thousands, floats in 6 digits.
std::string value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return with_separators(v.dump());
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string esc(std::string_view s) { return escape_xml(s); }

std::string kv_table(const json& object) {
  std::string out = "<table class=\"kv\">\n";
  for (const auto& [k, v] : object.items())
    out += "<tr><th>" + esc(k) + "</th><td>" + esc(value_text(v)) + "</td></tr>\n";
  return out + "</table>\n";
}

struct Card {
  std::string label, value, note;
};

double median_finite(const std::vector<TrainRecord>& records, double TrainRecord::*field) {
  std::vector<double> v;
  for (const TrainRecord& r : records)
    if (std::isfinite(r.*field)) v.push_back(r.*field);
  if (v.empty()) return NAN;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

std::vector<Card> stage_cards(const Folder& f) {
  std::vector<Card> cards;
  const Metrics& m = f.metrics;
  if (!m.train.empty()) {
    const TrainRecord& last = m.train.back();
    cards.push_back({"steps", std::to_string(last.step) + (std::isfinite(last.total_steps) ? " / " + fixed(last.total_steps, 0) : ""),
                     std::isfinite(last.epoch) ? "epoch " + fixed(last.epoch, 2) : ""});
    if (std::isfinite(last.tokens)) cards.push_back({"tokens", format_si(last.tokens), ""});
    std::vector<double> losses;
    for (const TrainRecord& r : m.train) losses.push_back(r.loss);
    cards.push_back({"train loss", fixed(smooth(losses).back(), 3), "smoothed; last step " + fixed(last.loss, 3)});
    if (const double t = median_finite(m.train, &TrainRecord::tokens_per_s); std::isfinite(t))
      cards.push_back({"tokens/s", format_si(t), "median"});
    if (std::isfinite(last.elapsed_s)) cards.push_back({"time", duration(last.elapsed_s), ""});
  }
  if (!m.val.empty()) {
    const ValRecord& last = m.val.back();
    cards.push_back({"val loss", fixed(last.loss, 3), std::isfinite(last.ppl) ? "ppl " + fixed(last.ppl, 1) : ""});
    const auto best = std::min_element(m.val.begin(), m.val.end(), [](const ValRecord& a, const ValRecord& b) {
      return std::isfinite(a.loss) && (!std::isfinite(b.loss) || a.loss < b.loss);
    });
    cards.push_back({"best val loss", fixed(best->loss, 3), "step " + std::to_string(best->step)});
  }
  if (f.info.is_object()) {
    if (const auto p = f.info.find("parameters"); p != f.info.end() && p->is_number())
      cards.push_back({"parameters", format_si(p->get<double>()), ""});
  }
  return cards;
}

std::string cards_html(const std::vector<Card>& cards) {
  if (cards.empty()) return "";
  std::string out = "<div class=\"cards\">\n";
  for (const Card& c : cards) {
    out += "<div class=\"card\"><div class=\"k\">" + esc(c.label) + "</div><div class=\"v\">" + esc(c.value) + "</div>";
    if (!c.note.empty()) out += "<div class=\"n\">" + esc(c.note) + "</div>";
    out += "</div>\n";
  }
  return out + "</div>\n";
}

std::string charts_html(const std::vector<NamedChart>& charts) {
  std::string out = "<div class=\"charts\">\n";
  for (const NamedChart& c : charts) out += "<div class=\"panel\">\n" + svg_chart(c.chart) + "</div>\n";
  return out + "</div>\n";
}

// run.json: its plain values in one table, each object (config, options) in a table that opens on a click.
std::string run_info_html(const json& info) {
  json plain = json::object();
  std::string objects;
  for (const auto& [k, v] : info.items()) {
    if (v.is_object())
      objects += "<details><summary>" + esc(k) + " (" + std::to_string(v.size()) + ")</summary>\n" + kv_table(v) +
                 "</details>\n";
    else
      plain[k] = v;
  }
  return "<h3>Run</h3>\n<div class=\"tables\">\n" + kv_table(plain) + "<div>\n" + objects + "</div>\n</div>\n";
}

std::string message_html(const char* role, const json& content) {
  return std::string("<div class=\"msg ") + role + "\"><div class=\"role\">" + role + "</div><div class=\"text\">" +
         esc(value_text(content)) + "</div></div>\n";
}

// Each sample as a short conversation; keys besides prompt and answer (step, temperature...) under it.
std::string samples_html(const std::vector<json>& samples) {
  std::string out = "<h3>Samples</h3>\n<div class=\"samples\">\n";
  for (const json& s : samples) {
    out += "<div class=\"chat\">\n";
    if (s.contains("prompt")) out += message_html("user", s["prompt"]);
    if (s.contains("answer")) out += message_html("assistant", s["answer"]);
    std::string meta;
    for (const auto& [k, v] : s.items())
      if (k != "prompt" && k != "answer") meta += (meta.empty() ? "" : " · ") + k + ": " + value_text(v);
    if (!meta.empty()) out += "<div class=\"meta\">" + esc(meta) + "</div>\n";
    out += "</div>\n";
  }
  return out + "</div>\n";
}

std::string folder_html(const Folder& f, size_t index, const ReportOptions& options) {
  std::string out = "<section>\n<h2>" + esc(f.name);
  // The command, where the folder's name does not already say it (a run folder named by its user).
  if (f.info.is_object() && f.info.contains("command") && f.info["command"].is_string() && f.info["command"] != f.name)
    out += " <span class=\"tag\">" + esc(f.info["command"].get<std::string>()) + "</span>";
  out += "</h2>\n";
  if (f.stage) {
    out += cards_html(stage_cards(f));
    out += charts_html(stage_charts({&f}, "s" + std::to_string(index), options.log_loss));
  }
  if (f.tokenizer_stats.is_object()) out += "<h3>Tokenizer statistics</h3>\n" + kv_table(f.tokenizer_stats);
  if (f.info.is_object()) out += run_info_html(f.info);
  if (!f.samples.empty()) out += samples_html(f.samples);
  return out + "</section>\n";
}

constexpr const char* kStyle = R"(
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1f2328;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}
header{background:#fff;border-bottom:1px solid #e1e4e8;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header .sub{color:#6a737d;font-size:13px;margin-top:4px}
main{padding:4px 28px 32px}
section{margin-top:24px}
h2{font-size:17px;font-weight:600;margin:0 0 12px}
h3{font-size:12px;font-weight:600;color:#57606a;text-transform:uppercase;letter-spacing:.05em;margin:20px 0 8px}
.tag{font-size:12px;font-weight:500;color:#0969da;background:#ddf4ff;border-radius:10px;padding:2px 8px;margin-left:6px;vertical-align:2px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:14px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:8px 14px;min-width:118px}
.card .k{font-size:11px;color:#6a737d;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:18px;font-weight:600;font-variant-numeric:tabular-nums}
.card .n{font-size:12px;color:#6a737d}
.charts,.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
.panel{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:4px;overflow:hidden}
.panel svg{display:block;width:100%;height:auto}
.tables{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table.kv{border-collapse:collapse;background:#fff;border:1px solid #e1e4e8;font-size:13px;min-width:300px}
table.kv th,table.kv td{padding:4px 12px;border-bottom:1px solid #f0f2f4;text-align:left;vertical-align:top}
table.kv th{color:#57606a;font-weight:500;white-space:nowrap}
table.kv td{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,monospace;font-size:12px;word-break:break-word}
details{margin:0 0 8px}
summary{cursor:pointer;color:#57606a;font-weight:500;margin-bottom:6px}
.chat{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:10px 12px}
.msg{margin:4px 0 8px}
.msg .role{font-size:11px;color:#6a737d;text-transform:uppercase;letter-spacing:.04em;margin-bottom:2px}
.msg .text{white-space:pre-wrap;overflow-wrap:anywhere;border-radius:8px;padding:8px 10px}
.user .text{background:#eef4ff}
.assistant .text{background:#f6f8fa}
.meta{font-size:12px;color:#6a737d}
.warn{background:#fff8c5;border:1px solid #e9d37a;border-radius:6px;padding:8px 14px;margin-top:16px;font-size:13px}
.warn ul{margin:4px 0 0;padding-left:20px}
footer{color:#8c959f;font-size:12px;padding:0 28px 24px}
)";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// Replaces the file whole: written beside it, then renamed over it.
void write_file(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  std::error_code ec;
  std::string why;
  if (!out)
    why = std::strerror(errno);
  else if (fs::rename(tmp, file, ec); !ec)
    return;
  else
    why = ec.message();
  fs::remove(tmp, ec);
  throw Error(file.string() + ": cannot write (" + why + ")");
}

}  // namespace

std::vector<double> smooth(std::span<const double> values) {
  const double span = std::max(1.0, double(values.size()) / 50);
  const double keep = 1 - 2 / (span + 1);  // the weight of the average so far
  std::vector<double> out(values.begin(), values.end());
  double average = 0, weight = 0;
  for (double& v : out) {
    if (!std::isfinite(v)) continue;
    average = keep * average + (1 - keep) * v;
    weight = keep * weight + (1 - keep);  // the debiasing: what the weights sum to so far
    v = average / weight;
  }
  return out;
}

std::vector<NamedChart> stage_charts(const std::vector<const Folder*>& stages, const std::string& id, bool log_loss) {
  const std::vector<Placed> placed = place(stages);
  auto chart = [&](const std::string& name, const char* title, const char* y_label, bool log_y) {
    NamedChart c{name, {}};
    c.chart.id = id + "-" + name;
    c.chart.title = title;
    c.chart.x.label = "step";
    c.chart.y.label = y_label;
    c.chart.y.log = log_y;
    c.chart.x_secondary = tokens_label(placed);
    for (const Placed& p : placed)
      if (stages.size() > 1 && !p.folder->metrics.train.empty())
        c.chart.marks.push_back({double(p.folder->metrics.train.front().step) + p.step_offset, p.folder->name});
    return c;
  };
  std::vector<NamedChart> charts;
  charts.push_back(chart("loss", "Loss", log_loss ? "loss (log scale)" : "loss", log_loss));
  add_train(charts.back().chart, placed, &TrainRecord::loss, "train (smoothed)", true);
  add_val_loss(charts.back().chart, placed);
  charts.push_back(chart("lr", "Learning rate", "learning rate", false));
  add_train(charts.back().chart, placed, &TrainRecord::lr, "", false);
  charts.push_back(chart("throughput", "Throughput", "tokens / s", false));
  add_train(charts.back().chart, placed, &TrainRecord::tokens_per_s, "smoothed", true);
  charts.push_back(chart("grad_norm", "Gradient norm", "‖g‖ before clipping (log)", true));
  add_train(charts.back().chart, placed, &TrainRecord::grad_norm, "smoothed", true);
  return charts;
}

std::string report_html(const Run& run, const ReportOptions& options) {
  const std::vector<const Folder*> stages = run.stages();
  const std::string& name = run.name;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>" +
                    esc(name) + " · vkmind report</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  std::string sub = fs::absolute(run.dir).lexically_normal().string();
  if (stages.size() > 1) {
    sub += " · stages: ";
    for (size_t i = 0; i < stages.size(); ++i) sub += (i ? " → " : "") + stages[i]->name;
  }
  out += "<header>\n<h1>" + esc(name) + "</h1>\n<div class=\"sub\">" + esc(sub) + " · written " + utc_now() +
         "</div>\n</header>\n<main>\n";
  if (!run.warnings.empty()) {
    out += "<div class=\"warn\"><b>Passed over while reading the run</b>\n<ul>\n";
    for (const std::string& w : run.warnings) out += "<li>" + esc(w) + "</li>\n";
    out += "</ul></div>\n";
  }
  if (stages.size() > 1)
    out += "<section>\n<h2>All stages</h2>\n" + charts_html(stage_charts(stages, "all", options.log_loss)) +
           "</section>\n";
  for (size_t i = 0; i < run.folders.size(); ++i) out += folder_html(run.folders[i], i, options);
  out += "</main>\n<footer>Written by vkmind report; regenerate with <code>vkmind report " + esc(run.dir.string()) +
         "</code>.</footer>\n</body>\n</html>\n";
  return out;
}

std::vector<std::string> write_report(const fs::path& run_dir, const ReportOptions& options) {
  const Run run = load_run(run_dir);
  if (options.svg_files && !run.stages().empty())
    for (const NamedChart& c : stage_charts(run.stages(), "run", options.log_loss))
      write_file(run_dir / (c.name + ".svg"), svg_chart(c.chart));
  write_file(options.html.empty() ? run_dir / "report.html" : options.html, report_html(run, options));
  return run.warnings;
}

void write_report(const fs::path& run_dir) { write_report(run_dir, ReportOptions{}); }

}  // namespace vkm::report
