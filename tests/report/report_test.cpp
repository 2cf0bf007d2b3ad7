// The report page and its SVG files: what is written where, well-formed and self-contained, escaped, the
// charts of one stage and of a pipeline's stages, missing optional files, errors, and the smoothing.
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "model/report/report.hpp"
#include "tests/report/report_support.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::report {
namespace {

namespace fs = std::filesystem;
using test::attribute_values;
using test::read_file;
using test::ScratchDir;
using test::xml_problem;

// `steps` training lines (loss falling from 9, warmup then cosine-like lr) and a validation line every 10.
std::string metrics_text(int steps, double time) {
  std::string text;
  for (int s = 1; s <= steps; ++s) {
    const double loss = 2 + 7 * std::exp(-s / 15.0) + 0.2 * std::sin(s * 1.7);
    text += R"({"kind":"train","step":)" + std::to_string(s) + R"(,"total_steps":)" + std::to_string(steps) +
            R"(,"epoch":0.5,"tokens":)" + std::to_string(s * 4096) + R"(,"loss":)" + std::to_string(loss) +
            R"(,"lr":)" + std::to_string(5e-4 * std::min(1.0, s / 5.0)) + R"(,"grad_norm":)" +
            std::to_string(3.0 / s + 0.5) + R"(,"tokens_per_s":)" + std::to_string(3000 + 50 * (s % 7)) +
            R"(,"elapsed_s":)" + std::to_string(1.3 * s) + R"(,"time":)" + std::to_string(time + s) + "}\n";
    if (s % 10 == 0)
      text += R"({"kind":"val","step":)" + std::to_string(s) + R"(,"tokens":)" + std::to_string(s * 4096) +
              R"(,"loss":)" + std::to_string(loss + 0.1) + R"(,"ppl":)" + std::to_string(std::exp(loss + 0.1)) + "}\n";
  }
  return text;
}

const char* kRunJson =
    R"j({"command":"pretrain","device":"llvmpipe (LLVM 15.0.6, 256 bits)","parameters":25829888,)j"
    R"j("config":{"hidden_size":512,"num_hidden_layers":8,"vocab_size":6400},"options":{"batch":16,"lr":0.0005}})j";

TEST(Report, WritesTheSelfContainedPageAndTheCurves) {
  ScratchDir dir;
  dir.write("metrics.jsonl", metrics_text(60, 1.7e9));
  dir.write("run.json", kRunJson);
  dir.write("tokenizer_stats.json", R"({"vocab":6400,"merges":6141,"train_seconds":12.5,"note":"<b>x</b>"})");
  dir.write("samples.jsonl", R"({"prompt":"<script>alert(\"x\")</script> & 'q'","answer":"line 1\nline 2","step":60})"
                             "\n");
  EXPECT_TRUE(write_report(dir.path(), ReportOptions{}).empty());

  for (const char* name : {"loss.svg", "lr.svg", "throughput.svg", "grad_norm.svg"}) {
    const std::string svg = read_file(dir.path() / name);
    EXPECT_EQ(xml_problem(svg), "") << name;
    EXPECT_GE(attribute_values(svg, "polyline", "points").size(), 1u) << name;
    EXPECT_EQ(svg.find("no data"), std::string::npos) << name;
  }
  const std::string loss = read_file(dir.path() / "loss.svg");
  EXPECT_NE(loss.find(">train (smoothed)</text>"), std::string::npos);
  EXPECT_NE(loss.find(">val</text>"), std::string::npos);
  EXPECT_EQ(attribute_values(loss, "circle", "cx").size(), 6u + 1);  // six validation points and the legend's dot
  EXPECT_NE(loss.find(" tok</text>"), std::string::npos);            // tokens under the steps

  const std::string html = read_file(dir.path() / "report.html");
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("line 1\nline 2"), std::string::npos);
  EXPECT_NE(html.find("<th>vocab</th><td>6,400</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>hidden_size</th><td>512</td>"), std::string::npos);
  EXPECT_NE(html.find(">25.8M<"), std::string::npos);  // parameters
  EXPECT_NE(html.find(">60 / 60<"), std::string::npos);  // steps
  EXPECT_EQ(html.find(" src="), std::string::npos);      // nothing fetched from anywhere
  EXPECT_EQ(html.find(" href="), std::string::npos);
  const auto ids = attribute_values(html, "clipPath", "id");
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());  // unique on the page
  EXPECT_FALSE(fs::exists(dir.path() / "report.html.tmp"));
}

TEST(Report, StagesShareOneAxis) {
  ScratchDir dir;
  dir.write("pretrain/metrics.jsonl", metrics_text(40, 1.7e9));
  dir.write("pretrain/run.json", kRunJson);
  dir.write("sft/metrics.jsonl", metrics_text(20, 1.8e9));
  const report::Run run = load_run(dir.path());
  const auto charts = stage_charts(run.stages(), "all");
  ASSERT_EQ(charts.size(), 4u);
  EXPECT_EQ(charts[0].name, "loss");
  const Chart& loss = charts[0].chart;
  ASSERT_EQ(loss.marks.size(), 2u);
  EXPECT_EQ(loss.marks[1].x, 41);  // sft's step 1 comes after pretrain's 40
  EXPECT_EQ(loss.marks[1].label, "sft");
  std::vector<std::string> names;
  for (const Series& s : loss.series)
    if (!s.name.empty()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"pretrain train (smoothed)", "sft train (smoothed)", "pretrain val", "sft val"}));
  EXPECT_EQ(loss.series[2].x.back(), 60);  // sft's raw loss at its step 20
  EXPECT_EQ(loss.x_secondary(41), format_si(41 * 4096) + " tok");
  EXPECT_EQ(loss.x_secondary(50), format_si((40 + 10) * 4096) + " tok");

  write_report(dir.path());
  const std::string html = read_file(dir.path() / "report.html");
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_NE(html.find("<h2>All stages</h2>"), std::string::npos);
  EXPECT_LT(html.find("<h2>pretrain"), html.find("<h2>sft"));
  EXPECT_EQ(attribute_values(html, "clipPath", "id").size(), 3u * 4);  // all stages, then each one
  EXPECT_NE(read_file(dir.path() / "loss.svg").find(">sft</text>"), std::string::npos);
}

TEST(Report, MissingOptionalFilesAndMissingValues) {
  ScratchDir dir;
  dir.write("metrics.jsonl", R"({"kind":"train","step":1,"loss":5})" "\n" R"({"kind":"train","step":2,"loss":null})");
  write_report(dir.path());
  const std::string html = read_file(dir.path() / "report.html");
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_EQ(html.find("Samples"), std::string::npos);
  EXPECT_EQ(html.find("Tokenizer"), std::string::npos);
  EXPECT_NE(read_file(dir.path() / "lr.svg").find(">no data</text>"), std::string::npos);

  ScratchDir tokenizer_only;  // a pipeline that has trained its tokenizer and nothing else yet
  tokenizer_only.write("tokenizer_stats.json", R"({"vocab":6400})");
  write_report(tokenizer_only.path());
  EXPECT_NE(read_file(tokenizer_only.path() / "report.html").find("<th>vocab</th>"), std::string::npos);
  EXPECT_FALSE(fs::exists(tokenizer_only.path() / "loss.svg"));
}

TEST(Report, WarningsAreReturnedAndShown) {
  ScratchDir dir;
  dir.write("metrics.jsonl", R"({"kind":"train","step":1,"loss":5})" "\n" R"({"kind":"train","st)");
  const auto warnings = write_report(dir.path(), ReportOptions{});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("metrics.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_NE(read_file(dir.path() / "report.html").find("metrics.jsonl:2: not valid JSON"), std::string::npos);
}

TEST(Report, PageElsewhereLeavesTheRunFolderAlone) {
  ScratchDir dir, out;
  dir.write("metrics.jsonl", metrics_text(5, 0));
  ReportOptions o;
  o.html = out.path() / "page.html";
  o.svg_files = false;
  o.log_loss = true;
  write_report(dir.path(), o);
  EXPECT_TRUE(fs::exists(o.html));
  EXPECT_FALSE(fs::exists(dir.path() / "report.html"));
  EXPECT_FALSE(fs::exists(dir.path() / "loss.svg"));
  EXPECT_NE(read_file(o.html).find("loss (log scale)"), std::string::npos);
}

TEST(Report, Errors) {
  ScratchDir dir;
  vkm::test::expect_error((dir.path() / "nope").string(), [&] { write_report(dir.path() / "nope"); });
  vkm::test::expect_error(dir.path().string() + ": not a run folder", [&] { write_report(dir.path()); });
  dir.write("metrics.jsonl", metrics_text(3, 0));
  ReportOptions o;
  o.html = dir.path() / "no" / "such" / "folder" / "page.html";
  vkm::test::expect_error(o.html.string() + ": cannot write", [&] { write_report(dir.path(), o); });
}

TEST(Smooth, DebiasedMovingAverage) {
  const std::vector<double> flat(100, 3.0);
  for (double v : smooth(flat)) EXPECT_NEAR(v, 3.0, 1e-12);
  std::vector<double> steps(200, 0.0);
  for (size_t i = 100; i < steps.size(); ++i) steps[i] = 1.0;
  const auto s = smooth(steps);
  EXPECT_EQ(s[0], 0.0);  // debiased: the first value is itself, not pulled toward zero
  EXPECT_GT(s[100], 0.0);  // follows the jump, behind it
  EXPECT_LT(s[100], 1.0);
  EXPECT_GT(s[101], s[100]);
  EXPECT_NEAR(s.back(), 1.0, 1e-3);
  const auto gap = smooth(std::vector<double>{1, NAN, 3, INFINITY});
  EXPECT_EQ(gap[0], 1);
  EXPECT_TRUE(std::isnan(gap[1]));
  EXPECT_TRUE(std::isfinite(gap[2]));
  EXPECT_TRUE(std::isinf(gap[3]));
}

}  // namespace
}  // namespace vkm::report
