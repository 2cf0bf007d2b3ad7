#pragma once
// Reference rounding to the stored float types, in double precision. Each op has its own reference
// beside this one (tests/reference/<op>.{hpp,cpp}), and kernels are judged against those.
#include <cstdint>
#include <vector>

namespace vkm::ref {

using Vec = std::vector<double>;

// Rounds to what the dtype can hold (nearest even), as a device store would.
double round_f16(double x);
double round_bf16(double x);
double round_f32(double x);

}  // namespace vkm::ref
