// `vkmind bench matmul`: to be written (matmul op).
#include <cstdio>

#include "tools/commands.hpp"

namespace vkm::tools {
int bench_matmul(const Common&, const BenchMatmulOptions&) {
  std::fprintf(stderr, "bench matmul: not built yet\n");
  return 1;
}
}  // namespace vkm::tools
