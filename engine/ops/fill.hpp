#pragma once
#include "engine/program.hpp"

namespace vkm::ops {
// Every element of t becomes `value` (converted to t's dtype).
void fill(Program& p, const Tensor& t, double value);
}
