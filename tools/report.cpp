// `vkmind report RUN_DIR`: (re)writes a run's report.html and its curves as SVG files.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "model/report/report.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

struct ReportCommandOptions {
  std::string run_dir, out;
  bool log_loss = false;
};

int report(const ReportCommandOptions& o) {
  report::ReportOptions options;
  options.log_loss = o.log_loss;
  if (!o.out.empty()) {
    options.html = o.out;
    options.svg_files = false;  // a page elsewhere leaves the run folder as it is; the page holds the curves
  }
  const auto warnings = report::write_report(o.run_dir, options);
  for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const std::filesystem::path html = o.out.empty() ? std::filesystem::path(o.run_dir) / "report.html" : options.html;
  std::printf("wrote %s\n", html.string().c_str());
  return 0;
}

}  // namespace

void add_report(CLI::App& app, const Common&, int& exit_code) {
  auto o = std::make_shared<ReportCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "report", "Write a run's report: RUN_DIR/report.html and loss.svg, lr.svg, throughput.svg, grad_norm.svg");
  sub->add_option("RUN_DIR", o->run_dir, "Run folder (metrics.jsonl, run.json; or stage folders inside)")->required();
  sub->add_option("--out", o->out, "Write only the page, to this file, instead of into the run folder");
  sub->add_flag("--log-loss", o->log_loss, "Loss on a log scale");
  on_run(sub, exit_code, [o] { return report(*o); });
}

}  // namespace vkm::tools
