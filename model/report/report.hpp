#pragma once
// The run report: one self-contained HTML page (inline SVG and CSS, no scripts, no external assets) with each
// stage's loss (training: raw and smoothed; validation), learning rate, throughput and gradient norm against
// the step (tokens seen under it), a summary of the run, its config and options, the tokenizer's statistics
// and the sample conversations; and the curves as SVG files beside it. Stages of a pipeline (RUN/pretrain,
// RUN/sft) continue one another's steps on one axis, with their boundaries marked, and each has its own
// section with its own charts as well.
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "model/report/chart.hpp"
#include "model/report/run.hpp"

namespace vkm::report {

struct ReportOptions {
  std::filesystem::path html;  // the page; default RUN/report.html
  bool svg_files = true;       // also RUN/loss.svg, lr.svg, throughput.svg, grad_norm.svg
  bool log_loss = false;       // loss on a log scale
};

// Writes the report of the run folder (see run.hpp for what it reads). Files are replaced whole (written
// beside and renamed), so a page open in a browser is never seen half-written. Returns the warnings about
// skipped lines and files, which the page lists too. Throws vkm::Error naming the folder when it is not a
// readable run folder, and naming any file it cannot write.
std::vector<std::string> write_report(const std::filesystem::path& run_dir, const ReportOptions& options);
// The same with the default options, for the trainer (at every checkpoint and at the end).
void write_report(const std::filesystem::path& run_dir);

// The page, for a run already read.
std::string report_html(const Run& run, const ReportOptions& options = {});

// The charts of one or more stages on a shared step axis: loss, lr, throughput, grad_norm (in this order;
// the names of their SVG files). Element ids start with `id`.
struct NamedChart {
  std::string name;
  Chart chart;
};
std::vector<NamedChart> stage_charts(const std::vector<const Folder*>& stages, const std::string& id,
                                     bool log_loss = false);

// A debiased exponential moving average (as TensorBoard's smoothing) spanning 1/50 of the values (at least
// one), so that a run of any length looks as smooth at the same width. Non-finite values stay as they are
// and do not enter the average.
std::vector<double> smooth(std::span<const double> values);

}  // namespace vkm::report
