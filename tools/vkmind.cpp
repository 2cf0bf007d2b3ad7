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

  TrainTokenizerOptions tt;
  auto* train_tok = app.add_subcommand("train-tokenizer", "Train a byte-level BPE tokenizer (Hugging Face tokenizer.json)");
  train_tok->add_option("--data", tt.data, "JSONL (text, conversations, chosen/rejected) or plain text files")
      ->required()->check(CLI::ExistingFile);
  train_tok->add_option("--out", tt.out, "Folder for tokenizer.json and tokenizer_config.json")->required();
  train_tok->add_option("--vocab", tt.vocab, "Vocabulary size, special and byte tokens included")->capture_default_str();
  train_tok->add_option("--min-frequency", tt.min_frequency, "Never merge a pair seen fewer times")->capture_default_str();
  train_tok->add_option("--reserved", tt.reserved, "Reserved special tokens after the three of ChatML")
      ->check(CLI::NonNegativeNumber);
  train_tok->add_flag("--nfkc", tt.nfkc, "NFKC-normalize text before pre-tokenization");
  train_tok->add_option("--threads", tt.threads, "Counting threads (0: all cores)")->check(CLI::NonNegativeNumber);

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

  BenchTokenizerOptions bt;
  auto* bench_tok = bench->add_subcommand("tokenizer", "Tokenizer training time, peak memory, encoding MB/s");
  bench_tok->add_option("--data", bt.data, "Corpus files (JSONL or text)")->required()->check(CLI::ExistingFile);
  bench_tok->add_option("--vocab", bt.vocab, "Vocabulary size")->capture_default_str();
  bench_tok->add_option("--threads", bt.threads, "Threads for training and parallel encoding (0: all cores)");
  bench_tok->add_option("--out", bt.out, "Keep the trained tokenizer in this folder");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*dev) return devices(common, json);
    if (*check) return selfcheck(common);
    if (*bench_mm) return bench_matmul(common, bm);
    if (*bench_ops_cmd) return bench_ops(common, bo);
    if (*train_tok) return train_tokenizer(tt);
    if (*bench_tok) return bench_tokenizer(bt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vkmind: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
