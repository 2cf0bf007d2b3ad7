// `vkmind selfcheck`: every shader once on the chosen device, OK or the failure.
#include <cstdio>

#include "engine/context.hpp"
#include "engine/instance.hpp"
#include "engine/selfcheck.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

int selfcheck(const Common& c) {
  Context ctx(ContextOptions{c.device});
  std::printf("selfcheck on %s (Vulkan %s%s)\n", ctx.info().name.c_str(), ctx.info().version_string().c_str(),
              ctx.validation() ? ", validation on" : "");
  uint64_t messages = Instance::validation_messages();
  int failed = 0;
  for (const CheckResult& r : vkm::selfcheck(ctx)) {
    if (!r.skipped.empty())
      std::printf("  %-22s SKIPPED %s\n", r.name.c_str(), r.skipped.c_str());
    else if (r.failure.empty())
      std::printf("  %-22s OK      %8.1f ms\n", r.name.c_str(), r.ms);
    else
      std::printf("  %-22s FAILED  %s\n", r.name.c_str(), r.failure.c_str());
    failed += !r.failure.empty();
  }
  if (uint64_t n = Instance::validation_messages() - messages) {
    std::printf("  %llu Vulkan validation message(s), printed above\n", (unsigned long long)n);
    ++failed;
  }
  std::printf(failed ? "selfcheck: %d FAILED\n" : "selfcheck: all OK\n", failed);
  return failed ? 1 : 0;
}

}  // namespace

void add_selfcheck(CLI::App& app, const Common& common, int& exit_code) {
  CLI::App* sub = app.add_subcommand("selfcheck", "Run every shader once on small inputs and report OK or the failure");
  on_run(sub, exit_code, [&common] { return selfcheck(common); });
}

}  // namespace vkm::tools
