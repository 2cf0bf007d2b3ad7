// vkmind: one binary, one subcommand per job. Each command's options and work live in its own tools/ file.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <CLI/CLI.hpp>

#include "tools/commands.hpp"

int main(int argc, char** argv) {
  using namespace vkm::tools;
  CLI::App app{"vkmind: train and chat with MiniMind-style language models on any Vulkan device"};
  app.require_subcommand(1);
  Common common;
  app.add_option("--device", common.device, "Vulkan device: index or name substring (default: VKMIND_DEVICE, else the best)");
  // Through the environment, so that every Context the command creates sees it (ContextOptions reads it).
  app.add_flag_callback("--no-coopmat", [] { setenv("VKMIND_NO_COOPMAT", "1", 1); },
                        "No tensor cores (VK_NV_cooperative_matrix) for f16 matrix products: the tiled kernel, "
                        "as VKMIND_NO_COOPMAT=1");
  int exit_code = 0;

  add_devices(app, common, exit_code);
  add_selfcheck(app, common, exit_code);
  add_train_tokenizer(app, common, exit_code);
  add_export(app, common, exit_code);
  add_report(app, common, exit_code);
  add_train(app, common, exit_code);

  add_chat(app, common, exit_code);
  add_generate(app, common, exit_code);

  CLI::App* bench = app.add_subcommand("bench", "Measure speed");
  bench->require_subcommand(1);
  add_bench_matmul(*bench, common, exit_code);
  add_bench_ops(*bench, common, exit_code);
  add_bench_tokenizer(*bench, common, exit_code);
  add_bench_generate(*bench, common, exit_code);
  add_bench_train(*bench, common, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vkmind: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
