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
  auto* bench_mm = bench->add_subcommand("matmul", "matmul GFLOP/s beside a plain C++ loop");
  bench_mm->add_option("--repeats", bm.repeats, "Timed runs per shape")->check(CLI::PositiveNumber);
  bench_mm->add_flag("--skip-cpu", bm.skip_cpu, "Do not time the C++ loop");
  bench_mm->add_option("--dtype", bm.dtype, "Storage of the matrices (sums are fp32 either way)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  BenchOpsOptions bo;
  auto* bench_ops_cmd = bench->add_subcommand("ops", "Every op forward and backward at MiniMind2-small sizes");
  bench_ops_cmd->add_option("--batch", bo.batch, "Sequences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  bench_ops_cmd->add_option("--seq", bo.seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  bench_ops_cmd->add_option("--repeats", bo.repeats, "Timed runs per op")->check(CLI::PositiveNumber);
  bench_ops_cmd->add_option("--dtype", bo.dtype, "Activations (master weights and optimizer state stay f32)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*dev) return devices(common, json);
    if (*check) return selfcheck(common);
    if (*bench_mm) return bench_matmul(common, bm);
    if (*bench_ops_cmd) return bench_ops(common, bo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vkmind: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
