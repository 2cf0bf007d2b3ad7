#pragma once
// One function per subcommand; tools/vkmind.cpp wires them to the command line.
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
};
int bench_matmul(const Common& c, const BenchMatmulOptions& o);

}  // namespace vkm::tools
