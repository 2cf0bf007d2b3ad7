// vkmind: one binary, one subcommand per job. Parsing only; the work is in the command functions.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "tools/commands.hpp"

int main(int argc, char** argv) {
  using namespace vkm::tools;
  CLI::App app{"vkmind: train and chat with MiniMind-style language models on any Vulkan device"};
  app.require_subcommand(1);
  Common common;
  app.add_option("--device", common.device, "Vulkan device: index or name substring (default: VKMIND_DEVICE, else the best)");

  bool json = false;
  auto* dev = app.add_subcommand("devices", "List the Vulkan devices and what they support");
  dev->add_flag("--json", json, "Print JSON");

  auto* check = app.add_subcommand("selfcheck", "Run every shader once on small inputs and report OK or the failure");

  auto* bench = app.add_subcommand("bench", "Measure speed");
  bench->require_subcommand(1);
  BenchMatmulOptions bm;
  auto* bench_mm = bench->add_subcommand("matmul", "fp32 matmul GFLOP/s beside a plain C++ loop");
  bench_mm->add_option("--repeats", bm.repeats, "Timed runs per shape")->check(CLI::PositiveNumber);
  bench_mm->add_flag("--skip-cpu", bm.skip_cpu, "Do not time the C++ loop");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*dev) return devices(common, json);
    if (*check) return selfcheck(common);
    if (*bench_mm) return bench_matmul(common, bm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vkmind: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
