#pragma once
// Runs every shader once on small inputs and compares with a plain host computation: a quick answer to
// "does this device run vkmind correctly". The full checks against the double reference are the tests.
#include <string>
#include <vector>

namespace vkm {

class Context;

struct CheckResult {
  std::string name;
  std::string failure;  // empty when the check passed
  std::string skipped;  // why it could not run on this device, if it could not
  double ms = 0;
};

std::vector<CheckResult> selfcheck(Context& ctx);

}  // namespace vkm
