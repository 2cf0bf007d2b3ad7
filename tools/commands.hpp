#pragma once
// One function per subcommand; tools/vkmind.cpp wires them to the command line.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vkm::tools {

struct Common {
  std::optional<std::string> device;  // --device: index or name substring
};

int devices(const Common& c, bool json);
int selfcheck(const Common& c);

struct BenchMatmulOptions {
  int repeats = 5;
  bool skip_cpu = false;
  std::string dtype = "f32";  // storage of X, W and Y: f32 or f16 (sums are fp32 either way)
};
int bench_matmul(const Common& c, const BenchMatmulOptions& o);

struct BenchOpsOptions {
  int64_t batch = 8, seq = 512;
  int repeats = 5;
  std::string dtype = "f32";  // activations: f32, or f16 (weights' working copy too; master weights stay f32)
};
int bench_ops(const Common& c, const BenchOpsOptions& o);

struct TrainTokenizerOptions {
  std::vector<std::string> data;  // JSONL (.jsonl, .json) or plain text files
  std::string out;
  int64_t vocab = 6400, min_frequency = 2;
  int reserved = 0;  // <|reserved_0|>... after the three special tokens
  bool nfkc = false;
  int threads = 0;   // 0: all cores
};
int train_tokenizer(const TrainTokenizerOptions& o);

struct BenchTokenizerOptions {
  std::vector<std::string> data;
  int64_t vocab = 6400;
  int threads = 0;
  std::string out;  // where the trained tokenizer goes (default: a temporary folder)
};
int bench_tokenizer(const BenchTokenizerOptions& o);

}  // namespace vkm::tools
