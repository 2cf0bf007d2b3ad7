#pragma once
// The cast reference, and the bit layouts of the float dtypes written independently of engine/dtype.cpp,
// so tests can build inputs and read outputs without trusting the engine's own conversions.
#include <cstdint>
#include <vector>

#include "engine/dtype.hpp"
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// Each value rounded to what `to` holds. The inputs are values of the source dtype, which double holds
// exactly, so this one rounding is the whole cast. NaN and infinities pass through.
Vec cast(const Vec& x, DType to);

// The bytes of a tensor of float dtype t holding x, each rounded to t first (NaN stored quiet).
std::vector<uint8_t> store(const Vec& x, DType t);
// What the elements of such a tensor are worth.
Vec load(const std::vector<uint8_t>& bytes, DType t);

}  // namespace vkm::ref
