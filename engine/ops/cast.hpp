#pragma once
#include "engine/program.hpp"

namespace vkm::ops {
// dst = src converted to dst's dtype, element by element: any pair of f32, f16 and bf16, rounding to nearest
// even (NaN stays NaN, overflow gives infinity, subnormals kept); equal dtypes copy. Equal element counts,
// no overlap.
void cast(Program& p, const Tensor& src, const Tensor& dst);
}
