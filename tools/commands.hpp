#pragma once
// One function per subcommand; tools/vkmind.cpp wires them to the command line.
#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace vkm::tools
