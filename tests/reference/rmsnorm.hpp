#pragma once
// Reference RMSNorm in double precision: x [rows, C], w [C], y = x / sqrt(mean(x²) + eps) * w per row.
#include <cstdint>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct RmsNorm {
  Vec y;     // [rows, C]
  Vec rstd;  // [rows]: 1 / sqrt(mean(x²) + eps)
};
RmsNorm rmsnorm(const Vec& x, const Vec& w, int64_t rows, int64_t C, double eps);

struct RmsNormGrads {
  Vec dx;  // [rows, C]
  Vec dw;  // [C], summed over rows
};
// The gradients of L = Σ dy·y, from the closed form (rstd recomputed from x).
RmsNormGrads rmsnorm_backward(const Vec& dy, const Vec& x, const Vec& w, int64_t rows, int64_t C, double eps);

}  // namespace vkm::ref
