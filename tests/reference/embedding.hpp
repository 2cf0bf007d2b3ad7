#pragma once
// Reference token embedding in double precision: table [V, C] row-major, one id per position.
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// out [positions, C]: row r is table row ids[r], or zeros where the id is outside [0, V).
Vec embedding(const Vec& table, const std::vector<int32_t>& ids, int64_t V, int64_t C);

// The gradient of sum(out * dout) with respect to the table, [V, C]: row v is the sum of the dout rows of
// the positions whose id is v; ids outside [0, V) contribute nothing.
Vec embedding_backward(const std::vector<int32_t>& ids, const Vec& dout, int64_t V, int64_t C);

}  // namespace vkm::ref
