#pragma once
// The CPU reference of every op, in double precision. Kernels are judged against these.
#include <cstdint>
#include <vector>

namespace vkm::ref {

using Vec = std::vector<double>;

// Rounds to what the dtype can hold (nearest even), as a device store would.
double round_f16(double x);
double round_bf16(double x);
double round_f32(double x);

}  // namespace vkm::ref
