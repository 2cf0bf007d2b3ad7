#pragma once
// Each tools/<command>.cpp adds its subcommand with an add_<command>() function: the options it parses and a
// callback that calls into model/ or engine/ and sets the exit code. tools/vkmind.cpp lists them.
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace vkm::tools {

struct Common {
  std::optional<std::string> device;  // --device: index or name substring
};

// Runs `work` when `sub` was chosen on the command line, its return value being the exit code.
inline void on_run(CLI::App* sub, int& exit_code, std::function<int()> work) {
  sub->callback([&exit_code, work = std::move(work)] { exit_code = work(); });
}

void add_devices(CLI::App& app, const Common& common, int& exit_code);
void add_selfcheck(CLI::App& app, const Common& common, int& exit_code);
void add_train_tokenizer(CLI::App& app, const Common& common, int& exit_code);
void add_export(CLI::App& app, const Common& common, int& exit_code);
void add_report(CLI::App& app, const Common& common, int& exit_code);
void add_train(CLI::App& app, const Common& common, int& exit_code);  // pretrain, sft, eval
void add_chat(CLI::App& app, const Common& common, int& exit_code);
void add_generate(CLI::App& app, const Common& common, int& exit_code);
// `bench` subcommands hang off the one `bench` command.
void add_bench_matmul(CLI::App& bench, const Common& common, int& exit_code);
void add_bench_ops(CLI::App& bench, const Common& common, int& exit_code);
void add_bench_tokenizer(CLI::App& bench, const Common& common, int& exit_code);
void add_bench_generate(CLI::App& bench, const Common& common, int& exit_code);
void add_bench_train(CLI::App& bench, const Common& common, int& exit_code);

}  // namespace vkm::tools
